package kv

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
)

// nested is one value of every kind, nested in each other.
func nested() Value {
	return ArrayValue([]Value{
		TextValue("héllo \"quoted\"\n\t\x01"),
		BytesValue([]byte{0, 1, 0xff, 'x'}),
		IntValue(-9223372036854775808),
		IntValue(42),
		FloatValue(1.0),
		FloatValue(-2.5e-300),
		FloatValue(1e21),
		BoolValue(true),
		BoolValue(false),
		NullValue(),
		DictValue([]Pair{
			{TextValue("a"), ArrayValue([]Value{IntValue(1), BytesValue([]byte("b"))})},
			{TextValue("set"), SetValue([]Value{TextValue("x"), IntValue(1), BytesValue([]byte("x"))})},
		}),
		DictValue([]Pair{{IntValue(1), TextValue("one")}, {BytesValue([]byte{0xfe}), NullValue()}}),
		DictValue([]Pair{{TextValue(MemberBytes), TextValue("not bytes")}}),
		DictValue([]Pair{{TextValue(MemberSet), ArrayValue(nil)}}),
		DictValue(nil),
		ArrayValue([]Value{}),
		SetValue(nil),
	})
}

func TestJSONRoundTrip(t *testing.T) {
	v := nested()
	data := AppendJSON(nil, v)
	if !json.Valid(data) {
		t.Fatalf("AppendJSON wrote invalid JSON: %s", data)
	}
	got, err := ParseJSON(data, MaxDepth)
	if err != nil {
		t.Fatalf("ParseJSON(%s): %v", data, err)
	}
	if !Equal(got, v) {
		t.Fatalf("round trip changed the value:\n got %s\nwant %s", AppendJSON(nil, got), data)
	}
	if again := AppendJSON(nil, got); string(again) != string(data) {
		t.Errorf("second encoding differs:\n%s\n%s", again, data)
	}
}

func TestJSONForms(t *testing.T) {
	cases := []struct {
		in   string
		want Value
		out  string // the canonical form; "" means in
	}{
		{`1`, IntValue(1), ""},
		{`1.0`, FloatValue(1), ""},
		{`1e2`, FloatValue(100), `100.0`},
		{`-0`, IntValue(0), `0`},
		{`-0.0`, FloatValue(math.Copysign(0, -1)), `-0.0`},
		{`9223372036854775808`, FloatValue(9223372036854775808), `9223372036854776000.0`},
		{`"a\u00e9\ud83d\ude00\/"`, TextValue("aé😀/"), `"aé😀/"`},
		{`"\ud800"`, TextValue("\ufffd"), `"` + "\ufffd" + `"`},
		{` [ 1 , "x" ] `, ArrayValue([]Value{IntValue(1), TextValue("x")}), `[1,"x"]`},
		{`{"value_b64":"AAE="}`, BytesValue([]byte{0, 1}), ""},
		{`{"value_set":[1,1,2]}`, SetValue([]Value{IntValue(1), IntValue(2)}), `{"value_set":[1,2]}`},
		{`{"value_dict":[[1,2],["k",3]]}`, DictValue([]Pair{{IntValue(1), IntValue(2)}, {TextValue("k"), IntValue(3)}}), ""},
		{`{"value_dict":[["value_b64","x"]]}`, DictValue([]Pair{{TextValue(MemberBytes), TextValue("x")}}), ""},
		{`{"b":1,"a":2,"b":3}`, DictValue([]Pair{{TextValue("b"), IntValue(3)}, {TextValue("a"), IntValue(2)}}), `{"b":3,"a":2}`},
		{`{"value_b64":"AAE=","other":1}`, DictValue([]Pair{{TextValue(MemberBytes), TextValue("AAE=")}, {TextValue("other"), IntValue(1)}}), ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseJSON([]byte(c.in), MaxDepth)
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			if !Equal(got, c.want) {
				t.Errorf("ParseJSON = %s, want %s", AppendJSON(nil, got), AppendJSON(nil, c.want))
			}
			out := c.out
			if out == "" {
				out = c.in
			}
			if s := string(AppendJSON(nil, got)); s != out {
				t.Errorf("AppendJSON = %s, want %s", s, out)
			}
		})
	}
}

func TestJSONRefused(t *testing.T) {
	cases := []string{
		``, ` `, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `1e400`, `-1e400`, `NaN`, `tru`, `nul`,
		`"abc`, `"\x"`, `"\u12"`, "\"\x01\"", "\"\xff\"", `[1,]`, `[1 2]`, `{"a"}`, `{"a":}`, `{a:1}`,
		`{"a":1,}`, `1 2`, `[`, `{`, `{"value_b64":5}`, `{"value_b64":"!!"}`, `{"value_set":{}}`,
		`{"value_dict":[[1]]}`, `{"value_dict":[1]}`, `{"value_dict":"x"}`,
		strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
	}
	for _, in := range cases {
		_, err := ParseJSON([]byte(in), MaxDepth)
		if !errors.Is(err, ErrBadValue) || !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("ParseJSON(%q) error = %v, want ErrBadValue", in, err)
		}
	}
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, err := ParseJSON([]byte(deep), MaxDepth); err != nil {
		t.Errorf("ParseJSON of %d nested arrays: %v", MaxDepth, err)
	}
}

func TestPlainJSONKeepsObjects(t *testing.T) {
	got, err := ParsePlainJSON([]byte(`{"value_b64":"AAE="}`), MaxDepth)
	if err != nil {
		t.Fatal(err)
	}
	want := DictValue([]Pair{{TextValue(MemberBytes), TextValue("AAE=")}})
	if !Equal(got, want) {
		t.Errorf("ParsePlainJSON = %s, want a dict", AppendJSON(nil, got))
	}
	pairs, err := ParseJSONObject([]byte(`{"value_b64":{"value_b64":"AAE="}}`), MaxDepth)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 1 || pairs[0].Key.Str() != MemberBytes || !Equal(pairs[0].Value, BytesValue([]byte{0, 1})) {
		t.Errorf("ParseJSONObject = %v, want one member value_b64 holding bytes", pairs)
	}
	if _, err := ParseJSONObject([]byte(`[1]`), MaxDepth); !errors.Is(err, ErrBadValue) {
		t.Errorf("ParseJSONObject of an array: error = %v, want ErrBadValue", err)
	}
}

func TestStoredForm(t *testing.T) {
	for _, v := range append(nested().Items(), nested()) {
		s := Encode(v)
		if s.Raw != (v.Kind() == Bytes) {
			t.Errorf("Encode(%s).Raw = %v", v.Kind(), s.Raw)
		}
		got, err := Decode(s)
		if err != nil {
			t.Fatalf("Decode(Encode(%s)): %v", v.Kind(), err)
		}
		if !Equal(got, v) {
			t.Errorf("Decode(Encode(%s)) = %s", AppendJSON(nil, v), AppendJSON(nil, got))
		}
	}
	_, err := Decode(broker.KVValue{Data: []byte("{bad")})
	if err == nil || errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Decode of corrupt data: error = %v, want one that is not the caller's fault", err)
	}
}

// FuzzParseJSON checks the parser against encoding/json: what it accepts is
// JSON, and every value it reads encodes to JSON that reads back the same.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`1`, `-0.5e3`, `"a\u00e9"`, `[1,{"a":null}]`, `{"value_b64":"AAE="}`,
		`{"value_set":[1,"a"]}`, `{"value_dict":[[1,2]]}`, `{"a":1,"a":2}`, string(AppendJSON(nil, nested()))} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseJSON(data, 16)
		if err != nil {
			if !errors.Is(err, ErrBadValue) {
				t.Fatalf("error %v does not wrap ErrBadValue", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		out := AppendJSON(nil, v)
		if !json.Valid(out) {
			t.Fatalf("AppendJSON wrote invalid JSON %q", out)
		}
		back, err := ParseJSON(out, 64)
		if err != nil {
			t.Fatalf("ParseJSON(AppendJSON(v)) = %v for %q", err, out)
		}
		if !Equal(back, v) {
			t.Fatalf("round trip of %q changed %q to %q", data, out, AppendJSON(nil, back))
		}
	})
}
