package abi

import (
	"encoding/binary"

	"github.com/tabreduce/tabreduce/wasm/internal/errfmt"
)

// appendBytes appends a u32 length prefix and b.
func appendBytes(dst, b []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// reader decodes length-prefixed fields from a buffer and remembers the first
// error; every method is a no-op after an error.
type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = errfmt.Kind(ErrTruncated, what+" at byte "+errfmt.Int(r.off)+" of "+errfmt.Int(len(r.buf)))
	}
}

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.buf) }

// take returns the next n bytes, or nil after recording a truncation.
func (r *reader) take(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(len(r.buf)-r.off) < n {
		r.fail(what)
		return nil
	}
	b := r.buf[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return b
}

func (r *reader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// bytes reads a length-prefixed field. The result aliases the buffer and has
// its capacity clipped so appending to it cannot overwrite what follows.
// The length's label is built only on failure: this runs once per key and
// value, and concatenating on every call allocated each time.
func (r *reader) bytes(what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.buf)-r.off < 4 {
		r.fail(what + " length")
		return nil
	}
	n := binary.LittleEndian.Uint32(r.buf[r.off:])
	r.off += 4
	return r.take(uint64(n), what)
}
