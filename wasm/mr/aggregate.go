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
//
// The first 16 bytes of every key are also kept packed in two uint64 words in
// its entry, so that for the short keys that dominate counting jobs, hashing
// is two multiplies and equality is three integer compares: under wazero,
// where every memory access is bounds-checked and every call is costly, that
// is what makes the table several times cheaper than a byte loop and a
// memequal call.
type aggregator struct {
	comb    Combiner
	sum     bool
	err     error    // first error met by addSum
	slots   []uint32 // index+1 into entries; 0 is empty
	entries []aggEntry
	keys    []byte // arena of keys
	vals    []byte // arena of value nodes: u32 next | u32 len | bytes
	scratch []byte
	iter    valueIter  // reused by every Combine call
	pending []abi.Pair // combiner output waiting to re-enter the table
	pendBuf []byte     // arena of pending's keys and values
}

type aggEntry struct {
	w0, w1     uint64 // the key's first 16 bytes, little-endian, zero-padded
	sum        int64
	hash       uint32
	koff, klen uint32
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
	a.err = nil
}

// lookup returns the entry for key, inserting it if absent. It runs once per
// emitted pair, so packing the key's first 16 bytes into two words, hashing
// them and probing are written out in this one function: under wazero a Go
// call costs as much as the whole probe.
func (a *aggregator) lookup(key []byte) *aggEntry {
	n := len(key)
	var w0, w1 uint64
	if cap(key) >= 16 {
		// Load whole words and mask off the bytes past the key: they belong
		// to the caller's buffer and are only read.
		full := key[:16]
		w0 = binary.LittleEndian.Uint64(full)
		w1 = binary.LittleEndian.Uint64(full[8:])
		switch {
		case n <= 8:
			w0 &= ^uint64(0) >> (64 - 8*n) // n = 0 shifts by 64: zero
			w1 = 0
		case n < 16:
			w1 &= ^uint64(0) >> (64 - 8*(n-8))
		}
	} else {
		for i, c := range key[:min(n, 16)] {
			if i < 8 {
				w0 |= uint64(c) << (8 * i)
			} else {
				w1 |= uint64(c) << (8 * (i - 8))
			}
		}
	}
	// One 64-bit multiply per word: wasm has no 128-bit multiply, so the
	// usual wide-multiply mixers are slow there.
	hh := w0*hashM0 ^ (w1+uint64(n))*hashM1
	if n > 16 {
		hh = hashTail(hh, key[16:])
	}
	h := uint32(hh ^ hh>>32)
	mask := uint32(len(a.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := a.slots[i]
		if s == 0 {
			return a.insert(i, h, w0, w1, key)
		}
		e := &a.entries[s-1]
		if e.w0 == w0 && e.w1 == w1 && e.klen == uint32(n) && (n <= 16 || e.hash == h && bytes.Equal(a.keys[e.koff+16:e.koff+e.klen], key[16:])) {
			return e
		}
	}
}

const hashM0, hashM1 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F

// hashTail mixes the bytes of a key past its sixteenth into h, eight at a
// time.
func hashTail(h uint64, b []byte) uint64 {
	for len(b) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(b)) * hashM0
		b = b[8:]
	}
	var t uint64
	for i, c := range b {
		t |= uint64(c) << (8 * i)
	}
	return (h ^ t) * hashM0
}

func (a *aggregator) insert(slot, h uint32, w0, w1 uint64, key []byte) *aggEntry {
	a.entries = append(a.entries, aggEntry{w0: w0, w1: w1, hash: h, koff: uint32(len(a.keys)), klen: uint32(len(key))})
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
	for idx := range a.entries {
		i := a.entries[idx].hash & mask
		for a.slots[i] != 0 {
			i = (i + 1) & mask
		}
		a.slots[i] = uint32(idx + 1)
	}
}

// sumEmit returns the Emit of a map task whose combiner is Sum: it adds the
// decimal value to the key's total. A closure rather than a method value,
// which would add a call per pair.
func (a *aggregator) sumEmit() Emit {
	return func(key, value []byte) {
		if len(value) == 1 && value[0]-'0' < 10 {
			a.lookup(key).sum += int64(value[0] - '0')
			return
		}
		n, ok := parseInt(value)
		if !ok {
			if a.err == nil {
				a.err = ErrNotInteger
			}
			return
		}
		a.lookup(key).sum += n
	}
}

// add is the Emit of a map task with any other combiner: it buffers the
// value and runs the combiner on the key once combineEvery values wait.
func (a *aggregator) add(key, value []byte) {
	e := a.lookup(key)
	a.push(e, value)
	if e.n >= combineEvery {
		if err := a.combineEntry(e); err != nil && a.err == nil {
			a.err = err
		}
	}
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

// values returns the entry's buffered values, copied into scratch as a value
// frame, as the Values of a Combine call.
func (a *aggregator) values(e *aggEntry) Values {
	a.scratch = a.scratch[:0]
	for off := e.head; off != 0; {
		next := binary.LittleEndian.Uint32(a.vals[off-1:])
		n := binary.LittleEndian.Uint32(a.vals[off+3:])
		a.scratch = abi.AppendValue(a.scratch, a.vals[off+7:off+7+n])
		off = next
	}
	return a.iter.reset(a.scratch, int(e.n))
}

// combineEntry runs the combiner on the values buffered for e and buffers its
// output in their place.
func (a *aggregator) combineEntry(e *aggEntry) error {
	key := a.keys[e.koff : e.koff+e.klen]
	a.pending, a.pendBuf = a.pending[:0], a.pendBuf[:0]
	err := a.comb.Combine(key, a.values(e), func(k, v []byte) {
		// When pendBuf grows, earlier pairs keep aliasing the old array,
		// which append never writes again: they stay valid.
		o := len(a.pendBuf)
		a.pendBuf = append(append(a.pendBuf, k...), v...)
		b := a.pendBuf[o:len(a.pendBuf):len(a.pendBuf)]
		a.pending = append(a.pending, abi.Pair{Key: b[:len(k):len(k)], Value: b[len(k):]})
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
// order, and returns the first error of the task.
func (a *aggregator) flush(out []byte) ([]byte, error) {
	if a.err != nil {
		return out, a.err
	}
	var num [20]byte
	for i := range a.entries {
		e := &a.entries[i]
		key := a.keys[e.koff : e.koff+e.klen]
		if a.sum {
			out = abi.AppendPair(out, key, appendInt(num[:0], e.sum))
			continue
		}
		err := a.comb.Combine(key, a.values(e), func(k, v []byte) {
			out = abi.AppendPair(out, k, v)
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
