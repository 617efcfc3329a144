package abi

import (
	"encoding/binary"

	"github.com/tabreduce/tabreduce/wasm/internal/errfmt"
)

// Result is what a successful task returns: its output pair stream and its
// counters. On the wire (the output buffer after StatusOK) it is
//
//	u32 pairsLen | pairs (a pair stream) | counters (to the end)
type Result struct {
	Pairs    []byte
	Counters Counters
}

// BeginResult reserves the pairs length prefix of a result frame in dst; the
// caller appends the pair stream and calls FinishResult with the returned
// mark.
func BeginResult(dst []byte) (buf []byte, mark int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

// FinishResult patches the pairs length reserved at mark and appends the
// counters.
func FinishResult(buf []byte, mark int, cs Counters) []byte {
	binary.LittleEndian.PutUint32(buf[mark:], uint32(len(buf)-mark-4))
	return AppendCounters(buf, cs)
}

// AppendResult appends a whole result frame.
func AppendResult(dst []byte, r Result) []byte {
	dst, mark := BeginResult(dst)
	dst = append(dst, r.Pairs...)
	return FinishResult(dst, mark, r.Counters)
}

// DecodeResult decodes a result frame and validates its pair stream. Pairs
// alias b.
func DecodeResult(b []byte) (Result, error) {
	r := reader{buf: b}
	pairs := r.bytes("result pairs")
	if r.err != nil {
		return Result{}, r.err
	}
	pr := NewPairReader(pairs)
	for _, _, ok := pr.Next(); ok; _, _, ok = pr.Next() {
	}
	if err := pr.Err(); err != nil {
		return Result{}, errfmt.Wrap("result pairs", err)
	}
	cs, err := DecodeCounters(b[r.off:])
	if err != nil {
		return Result{}, errfmt.Wrap("result counters", err)
	}
	return Result{Pairs: pairs, Counters: cs}, nil
}
