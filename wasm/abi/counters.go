package abi

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/tabreduce/tabreduce/wasm/internal/errfmt"
)

// A Counter is a named int64 a task reports with its result, like
// MapReduce's counters. Counters of all tasks of a job are summed.
type Counter struct {
	Name  string
	Value int64
}

// Counters is a set of counters sorted by name, names unique.
type Counters []Counter

// AppendCounters appends counters, which must be sorted by name:
//
//	repeated: u32 nameLen | name | u64 value (two's complement)
func AppendCounters(dst []byte, cs Counters) []byte {
	for _, c := range cs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(c.Name)))
		dst = append(dst, c.Name...)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(c.Value))
	}
	return dst
}

// DecodeCounters decodes a counters section and checks that names are
// strictly ascending.
func DecodeCounters(b []byte) (Counters, error) {
	var out Counters
	r := reader{buf: b}
	for !r.done() {
		name := r.bytes("counter name")
		v := r.u64("counter value")
		if r.err != nil {
			return nil, r.err
		}
		if len(out) > 0 && out[len(out)-1].Name >= string(name) {
			return nil, errfmt.Kind(ErrUnsorted, "counter "+errfmt.Quote(name)+" after "+errfmt.Quote([]byte(out[len(out)-1].Name)))
		}
		out = append(out, Counter{Name: string(name), Value: int64(v)})
	}
	return out, nil
}

// Merge returns the sum of c and d, sorted by name.
func (c Counters) Merge(d Counters) Counters {
	out := make(Counters, 0, len(c)+len(d))
	i, j := 0, 0
	for i < len(c) || j < len(d) {
		switch {
		case j == len(d) || (i < len(c) && c[i].Name < d[j].Name):
			out = append(out, c[i])
			i++
		case i == len(c) || d[j].Name < c[i].Name:
			out = append(out, d[j])
			j++
		default:
			out = append(out, Counter{Name: c[i].Name, Value: c[i].Value + d[j].Value})
			i++
			j++
		}
	}
	return out
}

// Get returns the value of the named counter, or 0.
func (c Counters) Get(name string) int64 {
	i, ok := slices.BinarySearchFunc(c, name, func(x Counter, n string) int { return strings.Compare(x.Name, n) })
	if !ok {
		return 0
	}
	return c[i].Value
}

// sortCounters sorts counters by name.
func sortCounters(cs Counters) {
	slices.SortFunc(cs, func(a, b Counter) int { return strings.Compare(a.Name, b.Name) })
}
