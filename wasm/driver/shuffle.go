package driver

import (
	"bytes"
	"slices"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// Partition is abi.Partition, the contract's partitioning.
func Partition(key []byte, r int) int { return abi.Partition(key, r) }

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

// SplitChunks is abi.SplitChunks, the contract's chunk splitting.
func SplitChunks(input []byte, size int) []abi.Chunk { return abi.SplitChunks(input, size) }
