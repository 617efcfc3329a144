package mr

import (
	"slices"
	"strings"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// Count is a named counter of the current task, like MapReduce's counters.
// Its value travels back with the task's result and the host sums it over
// all tasks of the job. Keep the handle in a variable when it is used in a hot
// loop: Counter looks the name up.
type Count struct {
	name  string
	value int64
}

var counters = map[string]*Count{}

// Counter returns the counter with the given name, creating it at zero.
func Counter(name string) *Count {
	c, ok := counters[name]
	if !ok {
		c = &Count{name: name}
		counters[name] = c
	}
	return c
}

// Add adds n to the counter.
func (c *Count) Add(n int64) { c.value += n }

// resetCounters zeroes every counter at the start of a task.
func resetCounters() {
	for _, c := range counters {
		c.value = 0
	}
}

// snapshotCounters returns the non-zero counters, sorted by name.
func snapshotCounters() abi.Counters {
	var out abi.Counters
	for _, c := range counters {
		if c.value != 0 {
			out = append(out, abi.Counter{Name: c.name, Value: c.value})
		}
	}
	slices.SortFunc(out, func(a, b abi.Counter) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// chunkOffset is the offset of the chunk the current map task reads.
var chunkOffset uint64

// ChunkOffset returns the byte offset, within the job's whole input, of the
// chunk the current Map call reads. Add a line's position in the chunk to get
// a stable id for the line.
func ChunkOffset() uint64 { return chunkOffset }
