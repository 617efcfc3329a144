package workerproto

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
)

// partitioned builds R correctly partitioned, sorted streams from keys.
func partitioned(r int, keys ...string) [][]byte {
	slices.Sort(keys)
	parts := make([][]byte, r)
	for _, k := range keys {
		p := driver.Partition([]byte(k), r)
		parts[p] = abi.AppendPair(parts[p], []byte(k), []byte("1"))
	}
	return parts
}

// keyIn returns a key that falls in partition p of r.
func keyIn(p, r int) string {
	for i := 0; ; i++ {
		if k := fmt.Sprint("k", i); driver.Partition([]byte(k), r) == p {
			return k
		}
	}
}

func TestCheckPartitions(t *testing.T) {
	k0, k1 := keyIn(0, 2), keyIn(1, 2)
	tests := []struct {
		name    string
		phase   Phase
		r       int
		parts   [][]byte
		mention string // "" when valid
	}{
		{"map ok", PhaseMap, 3, partitioned(3, "a", "b", "c", "d", "e", "a"), ""},
		{"map empty", PhaseMap, 2, [][]byte{nil, {}}, ""},
		{"reduce ok", PhaseReduce, 4, [][]byte{abi.EncodePairs([]abi.Pair{{Key: []byte("a")}, {Key: []byte("a"), Value: []byte("x")}})}, ""},
		{"reduce ignores partitioning", PhaseReduce, 2, [][]byte{abi.AppendPair(abi.AppendPair(nil, []byte(k0), nil), []byte(k1), nil)}, ""},
		{"map wrong count", PhaseMap, 3, [][]byte{nil}, "1 partitions, want 3"},
		{"reduce wrong count", PhaseReduce, 3, [][]byte{nil, nil}, "want 1"},
		{"wrong partition", PhaseMap, 2, [][]byte{abi.AppendPair(nil, []byte(k1), nil), nil}, "belongs to partition 1"},
		{"unsorted keys", PhaseReduce, 1, [][]byte{abi.AppendPair(abi.AppendPair(nil, []byte("b"), nil), []byte("a"), nil)}, "out of order"},
		{"unsorted values", PhaseReduce, 1, [][]byte{abi.AppendPair(abi.AppendPair(nil, []byte("a"), []byte("2")), []byte("a"), []byte("1"))}, "out of order"},
		{"bad framing", PhaseReduce, 1, [][]byte{{5, 0, 0, 0, 'a'}}, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPartitions(tt.phase, tt.r, tt.parts)
			if tt.mention == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tt.mention)
			}
		})
	}
}
