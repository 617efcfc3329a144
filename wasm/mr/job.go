// Package mr is the job SDK: a job author writes plain Go against Job, Values,
// Emit and Counter, calls Register from init, and builds the package main with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o job.wasm .
//
// The package then provides the module's exports (see wasm/ABI.md); the author
// never touches the ABI. The same job value runs natively with RunLocal, which
// drives it through the same framing code, so every module can be checked
// against its native twin.
//
// Inside a module everything runs on one thread, one task at a time; the
// package keeps per-task state (counters, the chunk offset) in package
// variables, and RunLocal serialises natively for the same reason.
package mr

import (
	"errors"

	"github.com/tabreduce/tabreduce/wasm/internal/errfmt"
)

// Emit outputs one key/value pair. Keys and values are arbitrary bytes; the
// SDK copies them, so the caller may reuse its buffers after Emit returns.
type Emit func(key, value []byte)

// Job is a map/reduce job. Map and Reduce are required; Init and Combine are
// optional.
type Job struct {
	// Init receives the job parameters (the JSON, or any bytes, the submitter
	// passed) once per instance before the first task, and again whenever
	// they change. A job keeps what it parsed in its own variables.
	Init func(params []byte) error
	// Map turns one chunk of input (whole lines; see ChunkOffset) into pairs.
	Map func(chunk []byte, emit Emit) error
	// Combine, if set, folds the values of one key on the map side before
	// they leave the module. It must be associative and commutative and emit
	// pairs with the key it was given, because it may run zero, one or
	// several times per key.
	Combine Combiner
	// Reduce folds all values of one key, over all map tasks. Keys arrive in
	// ascending byte order; values of a key in ascending byte order.
	Reduce func(key []byte, values Values, emit Emit) error
}

// A Combiner folds the values of one key on the map side.
type Combiner interface {
	Combine(key []byte, values Values, emit Emit) error
}

// CombineFunc adapts a function to the Combiner interface.
type CombineFunc func(key []byte, values Values, emit Emit) error

// Combine calls f.
func (f CombineFunc) Combine(key []byte, values Values, emit Emit) error { return f(key, values, emit) }

// ErrNotInteger is returned by Sum when a value is not a decimal int64.
var ErrNotInteger = errors.New("mr: value is not a decimal integer")

// Sum adds values that are decimal integers (such as "1" or "-12") and emits
// the total as decimal text. As a Combiner it is recognised by the map-side
// aggregation table, which then keeps one int64 per key instead of buffering
// values: the fast path for counting jobs. Its Combine method is also a
// ready-made Reduce.
type Sum struct{}

// Combine emits key with the sum of values.
func (Sum) Combine(key []byte, values Values, emit Emit) error {
	var total int64
	for values.Next() {
		n, ok := parseInt(values.Value())
		if !ok {
			return errfmt.Wrap("key "+errfmt.Quote(key), errfmt.Kind(ErrNotInteger, errfmt.Quote(values.Value())))
		}
		total += n
	}
	var buf [20]byte
	emit(key, appendInt(buf[:0], total))
	return nil
}

// parseInt parses a decimal int64 without allocating.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 1 && b[0]-'0' < 10 {
		return int64(b[0] - '0'), true
	}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	if n < 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// appendInt appends n in decimal.
func appendInt(dst []byte, n int64) []byte {
	var buf [20]byte
	i := len(buf)
	u := uint64(n)
	if n < 0 {
		u = uint64(-n)
	}
	for {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if n < 0 {
		dst = append(dst, '-')
	}
	return append(dst, buf[i:]...)
}
