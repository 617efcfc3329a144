// Package errfmt builds error messages without package fmt, for the code
// that is linked into every job module (wasm/abi, wasm/mr): fmt brings in
// reflection and most of os, about a third of a small module's size.
package errfmt

import "strconv"

// wrapped is an error with a message in front of its cause, like
// fmt.Errorf("msg: %w", err) or fmt.Errorf("%w: msg", err).
type wrapped struct {
	msg   string
	cause error
	after bool // the cause comes first: "cause: msg"
}

func (e *wrapped) Error() string {
	if e.after {
		return e.cause.Error() + ": " + e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

func (e *wrapped) Unwrap() error { return e.cause }

// Wrap returns an error reading "msg: cause" that unwraps to cause.
func Wrap(msg string, cause error) error { return &wrapped{msg: msg, cause: cause} }

// Kind returns an error reading "kind: msg" that unwraps to kind, for
// sentinel errors that callers match with errors.Is.
func Kind(kind error, msg string) error { return &wrapped{msg: msg, cause: kind, after: true} }

// Quote returns b as a double-quoted string, as %q would for printable
// ASCII; any other byte is written \xNN. At most 64 bytes are shown.
func Quote(b []byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, min(len(b), 64)+2)
	out = append(out, '"')
	for i, c := range b {
		if i == 64 {
			out = append(out, "..."...)
			break
		}
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c >= 0x20 && c < 0x7f:
			out = append(out, c)
		default:
			out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
		}
	}
	return string(append(out, '"'))
}

// Int returns n in decimal.
func Int[T ~int | ~int64 | ~uint32 | ~uint64](n T) string {
	if n < 0 {
		return strconv.FormatInt(int64(n), 10)
	}
	return strconv.FormatUint(uint64(n), 10)
}
