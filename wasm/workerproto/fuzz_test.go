package workerproto

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, and a
// frame it accepts must re-encode to exactly the same bytes (the encoding is
// canonical, so the server and a browser cannot disagree about a frame).
// The seeds are the valid frames of the round-trip test, here and in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, fr := range validFrames() {
		f.Add(Encode(fr))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeLimit(b, 1<<20)
		if err != nil {
			if fr != nil {
				t.Fatalf("frame %+v with error %v", fr, err)
			}
			return
		}
		if re := Encode(fr); !bytes.Equal(re, b) {
			t.Fatalf("re-encoded % x\nwant        % x", re, b)
		}
	})
}
