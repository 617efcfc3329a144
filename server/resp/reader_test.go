package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server/kv"
)

func testLimits() *Limits {
	l := &Limits{MaxBulk: 1 << 10, MaxRequest: 1500, MaxElements: 64, MaxDepth: 8, MaxInline: 256}
	l.setDefaults()
	return l
}

func newTestReader(in string) *reader {
	return &reader{br: bufio.NewReader(strings.NewReader(in)), lim: testLimits()}
}

func TestReadRequest(t *testing.T) {
	b := func(s string) kv.Value { return kv.BytesString(s) }
	cases := []struct {
		name    string
		in      string
		want    []kv.Value
		dialect bool
	}{
		{"RESP array", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", []kv.Value{b("GET"), b("k")}, false},
		{"empty bulk", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", []kv.Value{b("ECHO"), b("")}, false},
		{"null bulk", "*2\r\n$4\r\nECHO\r\n$-1\r\n", []kv.Value{b("ECHO"), kv.NullValue()}, false},
		{"inline", "set k  v\r\n", []kv.Value{b("set"), b("k"), b("v")}, false},
		{"inline with LF", "PING\n", []kv.Value{b("PING")}, false},
		{"empty array", "*0\r\n", nil, false},
		{"text", "*2\r\n$3\r\nGET\r\n^2\r\né\r\n", []kv.Value{b("GET"), kv.TextValue("é")}, true},
		{"integer and float", "*3\r\n$1\r\nX\r\n:-7\r\n:1.5\r\n", []kv.Value{b("X"), kv.IntValue(-7), kv.FloatValue(1.5)}, false},
		{"JSON", "*2\r\n$1\r\nX\r\n@14\r\n{\"a\":[1,true]}\r\n",
			[]kv.Value{b("X"), kv.DictValue([]kv.Pair{{Key: kv.TextValue("a"), Value: kv.ArrayValue([]kv.Value{kv.IntValue(1), kv.BoolValue(true)})}})}, true},
		{"dict and set", "*3\r\n$1\r\nX\r\n%1\r\n:1\r\n$1\r\nv\r\n&2\r\n^1\r\na\r\n^1\r\na\r\n",
			[]kv.Value{b("X"), kv.DictValue([]kv.Pair{{Key: kv.IntValue(1), Value: b("v")}}), kv.SetValue([]kv.Value{kv.TextValue("a")})}, true},
		{"RESP3 types", "*5\r\n$1\r\nX\r\n_\r\n#t\r\n,2.5\r\n~1\r\n:1\r\n",
			[]kv.Value{b("X"), kv.NullValue(), kv.BoolValue(true), kv.FloatValue(2.5), kv.SetValue([]kv.Value{kv.IntValue(1)})}, false},
		{"simple string", "*2\r\n$1\r\nX\r\n+ok\r\n", []kv.Value{b("X"), b("ok")}, false},
		{"a text request splits at spaces", "^8\r\nGET a  b\r\n", []kv.Value{kv.TextValue("GET"), kv.TextValue("a"), kv.TextValue("b")}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestReader(c.in)
			got, dialect, err := r.readRequest(nil)
			if err != nil {
				t.Fatalf("readRequest: %v", err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("readRequest = %d values, want %d", len(got), len(c.want))
			}
			for i := range got {
				if !kv.Equal(got[i], c.want[i]) {
					t.Errorf("value %d = %s, want %s", i, kv.AppendJSON(nil, got[i]), kv.AppendJSON(nil, c.want[i]))
				}
			}
			if dialect != c.dialect {
				t.Errorf("dialect = %v, want %v", dialect, c.dialect)
			}
			if _, _, err := r.readRequest(nil); !errors.Is(err, io.EOF) {
				t.Errorf("after the request: %v, want EOF (nothing left over)", err)
			}
		})
	}
}

func TestReadRequestRefuses(t *testing.T) {
	cases := map[string]string{
		"bulk over MaxBulk":    "*1\r\n$2000\r\n",
		"too many elements":    "*65\r\n",
		"nested too deep":      "*1\r\n" + strings.Repeat("*1\r\n", 9) + ":1\r\n",
		"request too large":    "*2\r\n$1000\r\n" + strings.Repeat("x", 1000) + "\r\n$1000\r\n",
		"inline too long":      strings.Repeat("x", 300) + "\r\n",
		"no CRLF after a bulk": "*1\r\n$1\r\nxy\r\n",
		"text not UTF-8":       "*1\r\n^1\r\n\xff\r\n",
		"text of length -1":    "*1\r\n^-1\r\n",
		"bad boolean":          "*1\r\n#x\r\n",
		"bad double":           "*1\r\n,inf\r\n",
		"float out of range":   "*1\r\n:1e999.0\r\n",
		"bad length":           "*1\r\n$1x\r\n",
		"error frame":          "*1\r\n-ERR\r\n",
		"JSON too deep":        "*1\r\n@" + "19\r\n" + strings.Repeat("[", 9) + "1" + strings.Repeat("]", 9) + "\r\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := newTestReader(in).readRequest(nil)
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("error = %v, want ErrProtocol", err)
			}
		})
	}
}

// seedValues is one value of every kind the seed's dialect carries.
func seedValues() []kv.Value {
	return []kv.Value{
		kv.NullValue(), kv.BoolValue(true), kv.IntValue(-1), kv.FloatValue(1e21), kv.FloatValue(0.25),
		kv.TextValue("tëxt\r\n"), kv.BytesValue([]byte{0, 0xff}),
		kv.ArrayValue([]kv.Value{kv.TextValue("a"), kv.ArrayValue(nil)}),
		kv.DictValue([]kv.Pair{{Key: kv.BytesValue([]byte("k")), Value: kv.SetValue([]kv.Value{kv.IntValue(1), kv.TextValue("1")})}}),
	}
}

// What the seed's dialect writes, it reads back as the same value.
func TestSeedWriterReadsBack(t *testing.T) {
	for _, v := range seedValues() {
		var buf bytes.Buffer
		w := writer{bw: bufio.NewWriter(&buf), dialect: seed}
		w.array(1)
		w.value(v)
		w.bw.Flush()
		got, _, err := newTestReader(buf.String()).readRequest(nil)
		if err != nil || len(got) != 1 || !kv.Equal(got[0], v) {
			t.Errorf("%s written as %q read back as %v, %v", kv.AppendJSON(nil, v), buf.String(), got, err)
		}
	}
}

func TestWriterDialects(t *testing.T) {
	v := kv.ArrayValue([]kv.Value{kv.IntValue(1), kv.FloatValue(2), kv.TextValue("t"), kv.NullValue(), kv.BoolValue(false),
		kv.SetValue([]kv.Value{kv.IntValue(3)}), kv.DictValue([]kv.Pair{{Key: kv.TextValue("k"), Value: kv.BytesValue([]byte("b"))}})})
	want := map[dialect]string{
		resp2: "$" + "67\r\n" + `[1,2.0,"t",null,false,{"value_set":[3]},{"k":{"value_b64":"Yg=="}}]` + "\r\n",
		resp3: "*7\r\n:1\r\n,2.0\r\n$1\r\nt\r\n_\r\n#f\r\n~1\r\n:3\r\n%1\r\n$1\r\nk\r\n$1\r\nb\r\n",
		seed:  "*7\r\n:1\r\n:2.0\r\n^1\r\nt\r\n$-1\r\n@5\r\nfalse\r\n&1\r\n:3\r\n%1\r\n^1\r\nk\r\n$1\r\nb\r\n",
	}
	for d, w := range want {
		var buf bytes.Buffer
		wr := writer{bw: bufio.NewWriter(&buf), dialect: d}
		wr.value(v)
		wr.bw.Flush()
		if buf.String() != w {
			t.Errorf("dialect %d wrote %q, want %q", d, buf.String(), w)
		}
	}
	if s := seedFloat(1e21); s != "1.0e+21" {
		t.Errorf("seedFloat(1e21) = %q, want 1.0e+21 (the seed reads a ':' with a '.' as a float)", s)
	}
}

// FuzzReadRequest feeds the parser anything: it never panics, fails only
// with a protocol error or the end of the input, stays within its limits,
// and what it reads the seed's dialect writes back to the same values.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "PING\r\n", "*1\r\n%1\r\n^1\r\na\r\n&1\r\n:1.5\r\n",
		"*1\r\n@7\r\n[1,{}]\r\n\r\n", "*3\r\n_\r\n#t\r\n,1\r\n", "^4\r\nPING\r\n", "*-1\r\n", "$-1\r\n",
		"*1\r\n*1\r\n*1\r\n:1\r\n", "*1\r\n$5\r\nab", "*2\r\n~1\r\n+x\r\n$0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{br: bufio.NewReader(bytes.NewReader(data)), lim: testLimits()}
		for range 100 {
			args, _, err := r.readRequest(nil)
			if err != nil {
				if !errors.Is(err, ErrProtocol) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v is neither a protocol error nor the end of input", err)
				}
				return
			}
			if len(args) > r.lim.MaxElements {
				t.Fatalf("%d arguments, over the limit of %d", len(args), r.lim.MaxElements)
			}
			var buf bytes.Buffer
			w := writer{bw: bufio.NewWriter(&buf), dialect: seed}
			w.array(len(args))
			for _, a := range args {
				w.value(a)
			}
			w.bw.Flush()
			back, _, err := (&reader{br: bufio.NewReader(&buf), lim: &Limits{MaxBulk: 1 << 20, MaxRequest: 1 << 24, MaxElements: 1 << 10, MaxDepth: 64, MaxInline: 1 << 10}}).readRequest(nil)
			if err != nil || len(back) != len(args) {
				t.Fatalf("re-reading %q: %d values, %v; want %d", buf.String(), len(back), err, len(args))
			}
			for i := range args {
				if !kv.Equal(back[i], args[i]) {
					t.Fatalf("value %d %s came back as %s", i, kv.AppendJSON(nil, args[i]), kv.AppendJSON(nil, back[i]))
				}
			}
		}
	})
}
