package worker

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// faults makes a share of a worker's results wrong on purpose, so that the
// server's verification (replication, known-answer tasks, spot checks) can
// be tested against a worker that cheats (Options.Faulty). A corrupted
// result is plausible: it keeps the protocol's framing, the sort order and
// every key in its partition, so it passes workerproto.CheckPartitions and
// only a comparison with another run of the task can catch it. Its counters
// are left as they were.
type faults struct {
	fraction float64
	mu       sync.Mutex // slots corrupt concurrently; rng is not safe for that
	rng      *rand.Rand
	// agree: the choice is drawn from the seed and the result itself, so
	// workers of one seed corrupt a result the same way (colluders).
	agree bool
	seed  uint64
}

// newFaults returns nil for a fraction of zero or less: an honest worker.
// A seed of zero draws one.
func newFaults(fraction float64, seed uint64) *faults {
	if !(fraction > 0) {
		return nil
	}
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &faults{fraction: min(fraction, 1), rng: rand.New(rand.NewPCG(seed, 0x7ab)), seed: seed}
}

// Ways a result is corrupted.
const (
	faultChangedValue = "changed value"
	faultDroppedPair  = "dropped pair"
)

// corrupt makes res wrong with probability f.fraction and says how, or
// returns "" if it left res alone. A result with no output pairs is always
// left alone: an invented pair would need a key the job could plausibly
// emit, which the worker cannot know. A nil f never corrupts.
func (f *faults) corrupt(res *workerproto.Result) (how string) {
	if f == nil {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.agree {
		h := workerproto.ResultHash(*res)
		f.rng = rand.New(rand.NewPCG(f.seed, binary.LittleEndian.Uint64(h[:8])))
	}
	if f.rng.Float64() >= f.fraction {
		return ""
	}
	var nonEmpty []int
	for p, stream := range res.Partitions {
		if len(stream) > 0 {
			nonEmpty = append(nonEmpty, p)
		}
	}
	if len(nonEmpty) == 0 {
		return ""
	}
	p := nonEmpty[f.rng.IntN(len(nonEmpty))]
	pairs, err := abi.DecodePairs(res.Partitions[p])
	if err != nil || len(pairs) == 0 {
		return "" // cannot happen: the executor framed it
	}
	i := f.rng.IntN(len(pairs))
	if f.rng.IntN(2) == 0 {
		how = faultDroppedPair
		pairs = slices.Delete(pairs, i, i+1)
	} else if v, ok := wrongValue(pairs[i].Value); ok {
		how = faultChangedValue
		pairs[i].Value = v
		// The new value may sort elsewhere among the pairs of its key.
		slices.SortFunc(pairs, abi.Pair.Compare)
	} else {
		how = faultDroppedPair
		pairs = slices.Delete(pairs, i, i+1)
	}
	// A new stream: the old one may alias the runner's or a frame's memory.
	parts := slices.Clone(res.Partitions)
	parts[p] = abi.EncodePairs(pairs)
	res.Partitions = parts
	return how
}

// wrongValue returns a plausible wrong value: a decimal integer plus one
// (a count off by one), or else the value with its last byte's low bit
// flipped. An empty value has no wrong twin of its kind.
func wrongValue(v []byte) ([]byte, bool) {
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n < 1<<62 {
		return strconv.AppendInt(nil, n+1, 10), true
	}
	if len(v) == 0 {
		return nil, false
	}
	w := slices.Clone(v)
	w[len(w)-1] ^= 1
	return w, true
}
