package errfmt

import (
	"errors"
	"testing"
)

func TestMessages(t *testing.T) {
	cause := errors.New("cause")
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"wrap", Wrap("init", cause), "init: cause"},
		{"kind", Kind(cause, "at byte 3"), "cause: at byte 3"},
		{"nested", Wrap("map at offset "+Int(uint64(42)), Kind(cause, "x")), "map at offset 42: cause: x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.err.Error(); got != c.want {
				t.Errorf("Error() = %q, want %q", got, c.want)
			}
			if !errors.Is(c.err, cause) {
				t.Errorf("%v does not unwrap to its cause", c.err)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	cases := map[string]string{
		"":             `""`,
		"word":         `"word"`,
		"a\"b\\c":      `"a\"b\\c"`,
		"\x00\n\xff é": `"\x00\x0a\xff \xc3\xa9"`,
	}
	for in, want := range cases {
		if got := Quote([]byte(in)); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	long := make([]byte, 100)
	for i := range long {
		long[i] = 'x'
	}
	if got := Quote(long); len(got) != 64+2+3 {
		t.Errorf("Quote of 100 bytes is %d bytes long, want 64 shown and an ellipsis: %s", len(got), got)
	}
}

func TestInt(t *testing.T) {
	if got := Int(-12); got != "-12" {
		t.Errorf("Int(-12) = %s", got)
	}
	if got := Int(uint64(1) << 63); got != "9223372036854775808" {
		t.Errorf("Int(1<<63) = %s", got)
	}
}
