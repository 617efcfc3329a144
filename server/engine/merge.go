package engine

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/wasm/abi"
)

// Map output reaches a partition queue as one message per map task: a pair
// stream sorted by key (then value). Reduce output reaches the output queue
// the same way, one message per reduce task. Both are read by merging the
// sorted runs, so no step sorts more than one run in memory.

// runs reads every message of queue as a pair stream.
func (e *Engine) runs(ctx context.Context, queue string) ([]*abi.PairReader, int, error) {
	var out []*abi.PairReader
	size := 0
	after := uint64(0)
	for {
		msgs, err := e.store.QueueScan(ctx, queue, after, 256)
		if err != nil {
			return nil, 0, err
		}
		if len(msgs) == 0 {
			return out, size, nil
		}
		for _, m := range msgs {
			out = append(out, abi.NewPairReader(m.Value))
			size += len(m.Value)
		}
		after = msgs[len(msgs)-1].ID
	}
}

// merger is a k-way merge of sorted pair streams.
type merger struct {
	h mergeHeap
}

type mergeItem struct {
	key, value []byte
	r          *abi.PairReader
}

type mergeHeap []mergeItem

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if c := bytes.Compare(h[i].key, h[j].key); c != 0 {
		return c < 0
	}
	return bytes.Compare(h[i].value, h[j].value) < 0
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newMerger(runs []*abi.PairReader) (*merger, error) {
	m := &merger{}
	for _, r := range runs {
		if k, v, ok := r.Next(); ok {
			m.h = append(m.h, mergeItem{k, v, r})
		} else if err := r.Err(); err != nil {
			return nil, err
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// next returns the smallest remaining pair.
func (m *merger) next() (key, value []byte, ok bool, err error) {
	if len(m.h) == 0 {
		return nil, nil, false, nil
	}
	it := m.h[0]
	if k, v, more := it.r.Next(); more {
		m.h[0] = mergeItem{k, v, it.r}
		heap.Fix(&m.h, 0)
	} else {
		if err := it.r.Err(); err != nil {
			return nil, nil, false, err
		}
		heap.Pop(&m.h)
	}
	return it.key, it.value, true, nil
}

// groupedPartition builds a reduce task's input: the partition's pairs
// merged, grouped by key, keys strictly ascending.
func (e *Engine) groupedPartition(ctx context.Context, job string, r int) ([]byte, error) {
	runs, size, err := e.runs(ctx, partQueue(job, r))
	if err != nil {
		return nil, err
	}
	if size > e.cfg.MaxTaskBytes {
		return nil, fmt.Errorf("%w: reduce partition %d holds %d bytes, more than the %d a task may carry: use more reducers",
			broker.ErrInvalid, r, size, e.cfg.MaxTaskBytes)
	}
	m, err := newMerger(runs)
	if err != nil {
		return nil, fmt.Errorf("partition %d: %w", r, err)
	}
	out := make([]byte, 0, size+size/4)
	var key []byte
	var values [][]byte
	emit := func() {
		out = abi.AppendGroupHeader(out, key, len(values))
		for _, v := range values {
			out = abi.AppendValue(out, v)
		}
	}
	for {
		k, v, ok, err := m.next()
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", r, err)
		}
		if !ok {
			break
		}
		if len(values) > 0 && !bytes.Equal(k, key) {
			emit()
			values = values[:0]
		}
		key = k
		values = append(values, v)
	}
	if len(values) > 0 {
		emit()
	}
	return out, nil
}

// Output streams a done job's output pairs sorted by key (then value).
func (e *Engine) Output(ctx context.Context, id string, fn OutputFunc) error {
	e.mu.Lock()
	j := e.jobs[id]
	e.mu.Unlock()
	if j == nil {
		return fmt.Errorf("%w: %s", ErrJobNotFound, truncate(id, 64))
	}
	if st := e.state(j); st != StateDone {
		return fmt.Errorf("%w: job %s is %s", ErrNotDone, id, st)
	}
	runs, _, err := e.runs(ctx, outQueue(id))
	if err != nil {
		return err
	}
	m, err := newMerger(runs)
	if err != nil {
		return err
	}
	for {
		k, v, ok, err := m.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
}
