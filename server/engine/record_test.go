package engine

import (
	"encoding/json"
	"testing"
)

// FuzzParseMapTask checks the fast reading of a map task's message against
// encoding/json: what parseMapTask accepts, decodeStrict reads the same,
// and every message the engine writes takes the fast path.
func FuzzParseMapTask(f *testing.F) {
	for _, s := range []string{
		`{"f":0,"o":0,"n":1,"g":0}`,
		`{"f":3,"o":1048576,"n":1048576,"g":5242880}`,
		`{"f":01,"o":0,"n":1,"g":0}`,
		`{"f":0,"o":0,"n":1,"g":0,"x":1}`,
		`{"f":0, "o":0,"n":1,"g":0}`,
		`{"f":-1,"o":0,"n":1,"g":0}`,
		`{"f":0,"o":0,"n":1,"g":99999999999999999999}`,
		`{"f":0,"o":0,"n":1,"g":0}x`,
	} {
		f.Add([]byte(s), 0, int64(0), int64(1), uint64(0))
	}
	f.Fuzz(func(t *testing.T, msg []byte, file int, off, n int64, global uint64) {
		if mt, ok := parseMapTask(msg); ok {
			var want mapTask
			if err := decodeStrict(msg, &want); err != nil || want != mt {
				t.Fatalf("%q: parseMapTask read %+v, decodeStrict %+v (%v)", msg, mt, want, err)
			}
		}
		if file < 0 || file > 1<<30 || off < 0 || n < 0 {
			return // the engine writes none of these
		}
		written := mapTask{File: file, Offset: off, Length: n, Global: global}
		b, err := json.Marshal(written)
		if err != nil {
			t.Fatal(err)
		}
		if mt, ok := parseMapTask(b); !ok || mt != written {
			t.Fatalf("%s: parseMapTask read %+v, %v; want %+v", b, mt, ok, written)
		}
	})
}
