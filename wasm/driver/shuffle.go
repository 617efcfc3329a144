package driver

import (
	"bytes"
	"hash/fnv"
	"slices"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// Partition returns the reduce partition of key among r: FNV-1a of the key
// modulo r. Every host must agree on it so partitions are stable.
func Partition(key []byte, r int) int {
	if r <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % uint32(r))
}

// batch is the input of one reduce call.
type batch struct {
	partition int
	groups    []byte
}

// shuffle sorts each partition by key then value, groups equal keys, and cuts
// the grouped stream into batches of about limit bytes between keys.
func shuffle(parts [][]abi.Pair, limit int) []batch {
	var out []batch
	for p, pairs := range parts {
		slices.SortFunc(pairs, abi.Pair.Compare)
		var cur []byte
		for i := 0; i < len(pairs); {
			j := i + 1
			for j < len(pairs) && bytes.Equal(pairs[j].Key, pairs[i].Key) {
				j++
			}
			cur = abi.AppendGroupHeader(cur, pairs[i].Key, j-i)
			for _, q := range pairs[i:j] {
				cur = abi.AppendValue(cur, q.Value)
			}
			if len(cur) >= limit {
				out = append(out, batch{partition: p, groups: cur})
				cur = nil
			}
			i = j
		}
		if len(cur) > 0 {
			out = append(out, batch{partition: p, groups: cur})
		}
	}
	return out
}

// SplitChunks cuts input into chunks of about size bytes, each ending just
// after a newline (the last one ends where the input ends). A line longer
// than size makes a longer chunk; it is never split.
func SplitChunks(input []byte, size int) []abi.Chunk {
	var out []abi.Chunk
	for off := 0; off < len(input); {
		end := min(off+size, len(input))
		if end < len(input) {
			if nl := bytes.IndexByte(input[end-1:], '\n'); nl >= 0 {
				end += nl
			} else {
				end = len(input)
			}
		}
		out = append(out, abi.Chunk{Offset: uint64(off), Data: input[off:end:end]})
		off = end
	}
	return out
}
