package abi

import (
	"bytes"
	"encoding/binary"

	"github.com/tabreduce/tabreduce/wasm/internal/errfmt"
)

// AppendGroupHeader starts one group of a grouped stream (reduce and combine
// input); the caller then appends exactly count values with AppendValue:
//
//	u32 keyLen | key | u32 count | count × (u32 valueLen | value)
func AppendGroupHeader(dst, key []byte, count int) []byte {
	dst = appendBytes(dst, key)
	return binary.LittleEndian.AppendUint32(dst, uint32(count))
}

// AppendValue appends one value of the current group.
func AppendValue(dst, value []byte) []byte { return appendBytes(dst, value) }

// EncodeGroups encodes pairs sorted by Pair.Compare as a grouped stream:
// consecutive pairs with equal keys become one group.
func EncodeGroups(sorted []Pair) []byte {
	var out []byte
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && bytes.Equal(sorted[j].Key, sorted[i].Key) {
			j++
		}
		out = AppendGroupHeader(out, sorted[i].Key, j-i)
		for _, p := range sorted[i:j] {
			out = AppendValue(out, p.Value)
		}
		i = j
	}
	return out
}

// GroupReader iterates over a grouped stream and checks that keys are
// strictly ascending and that no group is empty.
type GroupReader struct {
	r    reader
	prev []byte
	seen bool
}

// NewGroupReader returns a reader over a grouped stream.
func NewGroupReader(stream []byte) *GroupReader {
	return &GroupReader{r: reader{buf: stream}}
}

// Next returns the next group: its key, its values still framed as
// count × (u32 len | value), and the count. ok is false at the end or on a
// malformed stream (see Err).
func (g *GroupReader) Next() (key, values []byte, count int, ok bool) {
	if g.r.done() {
		return nil, nil, 0, false
	}
	start := g.r.off
	key = g.r.bytes("group key")
	n := g.r.u32("group count")
	if g.r.err != nil {
		return nil, nil, 0, false
	}
	if n == 0 {
		g.r.err = errfmt.Kind(ErrEmptyGroup, "key "+errfmt.Quote(key)+" at byte "+errfmt.Int(start))
		return nil, nil, 0, false
	}
	if g.seen && bytes.Compare(g.prev, key) >= 0 {
		g.r.err = errfmt.Kind(ErrUnsorted, errfmt.Quote(key)+" after "+errfmt.Quote(g.prev)+" at byte "+errfmt.Int(start))
		return nil, nil, 0, false
	}
	g.prev, g.seen = key, true
	vstart := g.r.off
	for i := uint32(0); i < n && g.r.err == nil; i++ {
		g.r.bytes("group value")
	}
	if g.r.err != nil {
		return nil, nil, 0, false
	}
	return key, g.r.buf[vstart:g.r.off:g.r.off], int(n), true
}

// Err returns the decoding error that stopped Next, if any.
func (g *GroupReader) Err() error { return g.r.err }

// Consumed returns how many bytes of the stream Next has read so far.
func (g *GroupReader) Consumed() int { return g.r.off }

// ValueReader iterates over the framed values of one group, as returned by
// GroupReader.Next. The values were validated by the GroupReader.
type ValueReader struct {
	r reader
}

// NewValueReader returns a reader over count × (u32 len | value).
func NewValueReader(values []byte) ValueReader { return ValueReader{r: reader{buf: values}} }

// Next returns the next value; ok is false at the end or on a malformed
// frame.
func (v *ValueReader) Next() (value []byte, ok bool) {
	if v.r.done() {
		return nil, false
	}
	value = v.r.bytes("value")
	return value, v.r.err == nil
}

// Group is one decoded group of a grouped stream.
type Group struct {
	Key    []byte
	Values [][]byte
}

// DecodeGroups decodes a whole grouped stream. The groups alias stream.
func DecodeGroups(stream []byte) ([]Group, error) {
	var out []Group
	gr := NewGroupReader(stream)
	for {
		key, vals, n, ok := gr.Next()
		if !ok {
			break
		}
		g := Group{Key: key, Values: make([][]byte, 0, n)}
		vr := NewValueReader(vals)
		for v, ok := vr.Next(); ok; v, ok = vr.Next() {
			g.Values = append(g.Values, v)
		}
		out = append(out, g)
	}
	return out, gr.Err()
}
