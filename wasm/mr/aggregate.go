package mr

import (
	"bytes"
	"encoding/binary"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// aggregator is the map-side combining table: an open-addressing hash table
// over byte keys, with keys and values in arenas so that emitting a pair
// allocates nothing and converts nothing to strings. With the Sum combiner
// it keeps one int64 per key; otherwise it buffers values per key and runs the
// combiner on a key whenever combineEvery values have piled up, and once more
// on every key at the end of the task.
type aggregator struct {
	comb    Combiner
	sum     bool
	slots   []uint32 // index+1 into entries; 0 is empty
	entries []aggEntry
	keys    []byte // arena of keys
	vals    []byte // arena of value nodes: u32 next | u32 len | bytes
	scratch []byte
	pending []abi.Pair // combiner output waiting to re-enter the table
}

type aggEntry struct {
	hash       uint32
	koff, klen uint32
	sum        int64
	head, tail uint32 // offset+1 of the first and last value node; 0 is none
	n          uint32
}

// combineEvery is how many buffered values of one key trigger an early run of
// the combiner, which bounds the buffered values per key.
const combineEvery = 64

const minSlots = 1 << 10

func (a *aggregator) init(c Combiner, sum bool) {
	a.comb, a.sum = c, sum
	a.slots = make([]uint32, minSlots)
}

// reset empties the table but keeps its memory for the next task.
func (a *aggregator) reset() {
	clear(a.slots)
	a.entries, a.keys, a.vals = a.entries[:0], a.keys[:0], a.vals[:0]
}

// hashBytes is a fast non-cryptographic hash of short byte strings, eight
// bytes per step with one 64-bit multiply each: wasm has no 128-bit multiply,
// so the usual wide-multiply mixers are slow there.
func hashBytes(b []byte) uint32 {
	const m = 0x9E3779B97F4A7C15
	h := uint64(len(b)) * m
	for len(b) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(b)) * m
		b = b[8:]
	}
	var t uint64
	for i, c := range b {
		t |= uint64(c) << (8 * i)
	}
	h = (h ^ t) * m
	return uint32(h >> 32)
}

// lookup returns the entry for key, inserting it if absent.
func (a *aggregator) lookup(key []byte) *aggEntry {
	h := hashBytes(key)
	mask := uint32(len(a.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := a.slots[i]
		if s == 0 {
			return a.insert(i, h, key)
		}
		e := &a.entries[s-1]
		if e.hash == h && bytes.Equal(a.keys[e.koff:e.koff+e.klen], key) {
			return e
		}
	}
}

func (a *aggregator) insert(slot, h uint32, key []byte) *aggEntry {
	a.entries = append(a.entries, aggEntry{hash: h, koff: uint32(len(a.keys)), klen: uint32(len(key))})
	a.keys = append(a.keys, key...)
	a.slots[slot] = uint32(len(a.entries))
	if len(a.entries)*2 > len(a.slots) {
		a.grow()
	}
	return &a.entries[len(a.entries)-1]
}

func (a *aggregator) grow() {
	a.slots = make([]uint32, 2*len(a.slots))
	mask := uint32(len(a.slots) - 1)
	for idx, e := range a.entries {
		i := e.hash & mask
		for a.slots[i] != 0 {
			i = (i + 1) & mask
		}
		a.slots[i] = uint32(idx + 1)
	}
}

// add records one emitted pair.
func (a *aggregator) add(key, value []byte) error {
	if a.sum {
		n, ok := parseInt(value)
		if !ok {
			return ErrNotInteger
		}
		a.lookup(key).sum += n
		return nil
	}
	e := a.lookup(key)
	a.push(e, value)
	if e.n >= combineEvery {
		return a.combineEntry(e)
	}
	return nil
}

// push appends a value node to the entry's list.
func (a *aggregator) push(e *aggEntry, value []byte) {
	off := uint32(len(a.vals)) + 1
	a.vals = binary.LittleEndian.AppendUint32(a.vals, 0)
	a.vals = binary.LittleEndian.AppendUint32(a.vals, uint32(len(value)))
	a.vals = append(a.vals, value...)
	if e.tail != 0 {
		binary.LittleEndian.PutUint32(a.vals[e.tail-1:], off)
	} else {
		e.head = off
	}
	e.tail = off
	e.n++
}

// framedValues copies the entry's values into scratch as a value frame.
func (a *aggregator) framedValues(e *aggEntry) []byte {
	a.scratch = a.scratch[:0]
	for off := e.head; off != 0; {
		next := binary.LittleEndian.Uint32(a.vals[off-1:])
		n := binary.LittleEndian.Uint32(a.vals[off+3:])
		a.scratch = abi.AppendValue(a.scratch, a.vals[off+7:off+7+n])
		off = next
	}
	return a.scratch
}

// combineEntry runs the combiner on the values buffered for e and buffers its
// output in their place.
func (a *aggregator) combineEntry(e *aggEntry) error {
	key := a.keys[e.koff : e.koff+e.klen]
	vals := a.framedValues(e)
	a.pending = a.pending[:0]
	err := a.comb.Combine(key, newValues(vals, int(e.n)), func(k, v []byte) {
		a.pending = append(a.pending, abi.Pair{Key: bytes.Clone(k), Value: bytes.Clone(v)})
	})
	if err != nil {
		return err
	}
	e.head, e.tail, e.n = 0, 0, 0
	for _, p := range a.pending {
		a.push(a.lookup(p.Key), p.Value)
	}
	return nil
}

// flush appends the combined output of every key to out, in first-emitted
// order.
func (a *aggregator) flush(out []byte) ([]byte, error) {
	var num [20]byte
	for i := range a.entries {
		e := &a.entries[i]
		key := a.keys[e.koff : e.koff+e.klen]
		if a.sum {
			out = abi.AppendPair(out, key, appendInt(num[:0], e.sum))
			continue
		}
		err := a.comb.Combine(key, newValues(a.framedValues(e), int(e.n)), func(k, v []byte) {
			out = abi.AppendPair(out, k, v)
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
