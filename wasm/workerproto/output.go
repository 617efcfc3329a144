package workerproto

import (
	"fmt"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// CheckPartitions verifies the partitions of a result for a task of the
// given phase and R: R pair streams for a map task (1 for a reduce task),
// each well framed and sorted by key then value, and every pair of a map
// task's stream r in partition abi.Partition(key, R) == r. The codec does
// not check this when it decodes (it costs a pass over the payload and a
// hash per key); the server calls it before it trusts a worker's output.
// Errors wrap ErrInvalid.
func CheckPartitions(phase Phase, reducers int, parts [][]byte) error {
	want := reducers
	if phase == PhaseReduce {
		want = 1
	}
	if len(parts) != want {
		return fmt.Errorf("%w: %d partitions, want %d", ErrInvalid, len(parts), want)
	}
	for p, stream := range parts {
		var prev abi.Pair
		pr := abi.NewPairReader(stream)
		for i := 0; ; i++ {
			k, v, ok := pr.Next()
			if !ok {
				break
			}
			cur := abi.Pair{Key: k, Value: v}
			if i > 0 && prev.Compare(cur) > 0 {
				return fmt.Errorf("%w: partition %d: pair %d (key %q) out of order", ErrInvalid, p, i, k)
			}
			if phase == PhaseMap {
				if got := abi.Partition(k, reducers); got != p {
					return fmt.Errorf("%w: partition %d: key %q belongs to partition %d", ErrInvalid, p, k, got)
				}
			}
			prev = cur
		}
		if err := pr.Err(); err != nil {
			return fmt.Errorf("%w: partition %d: %w", ErrInvalid, p, err)
		}
	}
	return nil
}
