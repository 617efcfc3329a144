// Package driver runs a whole map/reduce job in one process: it splits the
// input into chunks on line boundaries, runs a map task per chunk, shuffles
// the output into R partitions by a hash of the key, sorts and groups each
// partition, runs reduce tasks over it and merges the results in key order.
//
// The tasks themselves run on an Executor: a wazero instance pool (package
// runner) for `tabreduce run`, or the job's native Go twin (mr.RunLocal).
package driver

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// Executor runs the tasks of one job. Map gets one chunk; Reduce gets a
// grouped stream (keys strictly ascending, values of a key sorted). Results
// must not alias memory the executor reuses.
type Executor interface {
	Map(ctx context.Context, chunk abi.Chunk) (abi.Result, error)
	Reduce(ctx context.Context, groups []byte) (abi.Result, error)
}

// Defaults for Options.
const (
	DefaultChunkSize   = 4 << 20
	DefaultReduceBatch = 4 << 20
)

// Options shape a run. Zero values take the defaults.
type Options struct {
	// ChunkSize is the target size of a map chunk; chunks end on a newline.
	ChunkSize int
	// Reducers is the number of partitions R (default 1).
	Reducers int
	// ReduceBatch bounds the grouped bytes of one reduce call; a partition
	// larger than that is reduced in several calls, cut between keys.
	ReduceBatch int
	// Parallelism is how many tasks run at once (default 1). Above 1 the
	// Executor must be safe for concurrent use.
	Parallelism int
}

func (o Options) withDefaults() Options {
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Reducers <= 0 {
		o.Reducers = 1
	}
	if o.ReduceBatch <= 0 {
		o.ReduceBatch = DefaultReduceBatch
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 1
	}
	return o
}

// Output is the result of a job: every reduce output pair, sorted by key and
// then value, and the counters summed over all tasks.
type Output struct {
	Pairs    []abi.Pair
	Counters abi.Counters
}

// Run runs a whole job over input.
func Run(ctx context.Context, exec Executor, input []byte, opts Options) (Output, error) {
	opts = opts.withDefaults()
	chunks := SplitChunks(input, opts.ChunkSize)
	mapped := make([]abi.Result, len(chunks))
	err := forEach(ctx, len(chunks), opts.Parallelism, func(ctx context.Context, i int) error {
		r, err := exec.Map(ctx, chunks[i])
		if err != nil {
			return fmt.Errorf("map task %d (offset %d): %w", i, chunks[i].Offset, err)
		}
		mapped[i] = r
		return nil
	})
	if err != nil {
		return Output{}, err
	}
	var out Output
	parts := make([][]abi.Pair, opts.Reducers)
	for _, r := range mapped {
		out.Counters = out.Counters.Merge(r.Counters)
		pr := abi.NewPairReader(r.Pairs)
		for k, v, ok := pr.Next(); ok; k, v, ok = pr.Next() {
			p := Partition(k, opts.Reducers)
			parts[p] = append(parts[p], abi.Pair{Key: k, Value: v})
		}
		if err := pr.Err(); err != nil {
			return Output{}, fmt.Errorf("map output: %w", err)
		}
	}
	batches := shuffle(parts, opts.ReduceBatch)
	reduced := make([]abi.Result, len(batches))
	err = forEach(ctx, len(batches), opts.Parallelism, func(ctx context.Context, i int) error {
		r, err := exec.Reduce(ctx, batches[i].groups)
		if err != nil {
			return fmt.Errorf("reduce task %d (partition %d): %w", i, batches[i].partition, err)
		}
		reduced[i] = r
		return nil
	})
	if err != nil {
		return Output{}, err
	}
	for _, r := range reduced {
		out.Counters = out.Counters.Merge(r.Counters)
		pairs, err := abi.DecodePairs(r.Pairs)
		if err != nil {
			return Output{}, fmt.Errorf("reduce output: %w", err)
		}
		out.Pairs = append(out.Pairs, pairs...)
	}
	slices.SortFunc(out.Pairs, abi.Pair.Compare)
	return out, nil
}

// forEach runs fn(0..n-1) on at most par goroutines and returns the first
// error, cancelling the others.
func forEach(parent context.Context, n, par int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for w := 0; w < min(par, n); w++ {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || ctx.Err() != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		return parent.Err()
	}
	return first
}
