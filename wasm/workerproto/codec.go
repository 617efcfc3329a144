package workerproto

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Field appenders. Lengths and counts are u32; callers keep fields below
// 4 GiB (frames are far smaller).

func appendU16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }
func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }
func appendU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }

func appendBytes(dst, b []byte) []byte {
	return append(appendU32(dst, uint32(len(b))), b...)
}

func appendString(dst []byte, s string) []byte {
	return append(appendU32(dst, uint32(len(s))), s...)
}

func appendCount(dst []byte, n int) []byte { return appendU32(dst, uint32(n)) }

// millis and micros convert durations to their wire units, saturating
// instead of wrapping.
func millis(d time.Duration) uint32 { return saturate32(d / time.Millisecond) }
func micros(d time.Duration) uint32 { return saturate32(d / time.Microsecond) }

func saturate32(n time.Duration) uint32 {
	switch {
	case n < 0:
		return 0
	case n > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(n)
}

// reader decodes a frame body field by field and remembers the first error;
// every method is a no-op after it, so a decoder reads all fields and checks
// r.err once.
type reader struct {
	buf []byte
	off int
	err error
	// last is the last string read: a frame's tasks name the same job and
	// module, so a string equal to it is handed back without a copy.
	last [2]string
}

func (r *reader) fail(sentinel error, what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d of %d", sentinel, what, r.off, len(r.buf))
	}
}

// invalid records an ErrInvalid for a field whose value is out of range.
func (r *reader) invalid(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.buf)-r.off < n {
		r.fail(ErrTruncated, what)
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8(what string) uint8 {
	if b := r.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if b := r.take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(what string) uint32 { return r.prefix(what, "") }

// prefix reads the u32 in front of a field (its length or count); a
// failure names it what+suffix, which is only joined then.
func (r *reader) prefix(what, suffix string) uint32 {
	if r.err == nil && len(r.buf)-r.off < 4 {
		r.fail(ErrTruncated, what+suffix)
	}
	if b := r.take(4, ""); b != nil {
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

// bytes reads a length-prefixed field. The result aliases the frame, with
// its capacity clipped so that appending to it cannot overwrite what follows.
func (r *reader) bytes(what string) []byte {
	n := r.prefix(what, " length")
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.buf)-r.off) {
		r.fail(ErrTruncated, what)
		return nil
	}
	return r.take(int(n), what)
}

// string reads a length-prefixed string of at most MaxStringBytes, copied.
func (r *reader) string(what string) string {
	n := r.prefix(what, " length")
	if r.err == nil && n > MaxStringBytes {
		r.fail(ErrTooLarge, fmt.Sprintf("%s of %d bytes (limit %d)", what, n, MaxStringBytes))
	}
	if r.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(r.buf)-r.off) {
		r.fail(ErrTruncated, what)
		return ""
	}
	b := r.take(int(n), what)
	for _, s := range r.last {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	r.last[0], r.last[1] = s, r.last[0]
	return s
}

// count reads a list count and checks that the remaining bytes can hold that
// many items of at least minItem bytes each, so that a lying count cannot
// make the decoder allocate.
func (r *reader) count(what string, minItem int) int {
	n := r.prefix(what, " count")
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(minItem) > uint64(len(r.buf)-r.off) {
		r.fail(ErrTruncated, fmt.Sprintf("%s count %d (items of %d+ bytes)", what, n, minItem))
		return 0
	}
	return int(n)
}

// end records ErrTrailing if bytes remain.
func (r *reader) end() {
	if r.err == nil && r.off != len(r.buf) {
		r.err = fmt.Errorf("%w: %d bytes", ErrTrailing, len(r.buf)-r.off)
	}
}
