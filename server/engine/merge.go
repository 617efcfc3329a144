package engine

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/wasm/abi"
)

// Map output reaches a partition queue as one message per map task and
// partition: a run, sorted by key then value (inline or spilled to a file,
// runs.go). Reduce output reaches the output queue as one pair stream per
// reduce task. Both are read by merging the sorted runs as streams, so no
// step sorts, and memory holds one pair per run at a time.

// messages calls fn with every message of queue, in id order.
func (e *Engine) messages(ctx context.Context, queue string, fn func(broker.Message) error) error {
	after := uint64(0)
	for {
		msgs, err := e.q.Scan(ctx, queue, after, 256)
		if err != nil || len(msgs) == 0 {
			return err
		}
		for _, m := range msgs {
			if err := fn(m); err != nil {
				return err
			}
		}
		after = msgs[len(msgs)-1].ID
	}
}

// partitionRuns opens every run of a partition; close closes their files.
func (e *Engine) partitionRuns(ctx context.Context, j *job, r int) (runs []pairSource, close func(), err error) {
	var files []io.Closer
	close = func() {
		for _, f := range files {
			f.Close()
		}
	}
	err = e.messages(ctx, partQueue(j.rec.ID, r), func(m broker.Message) error {
		src, f, err := openRun(j, m.Value)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Key(), err)
		}
		if f != nil {
			files = append(files, f)
		}
		runs = append(runs, src)
		return nil
	})
	if err != nil {
		close()
		return nil, nil, err
	}
	return runs, close, nil
}

// merger is a k-way merge of sorted pair streams.
type merger struct {
	h mergeHeap
}

type mergeItem struct {
	key, value []byte
	r          pairSource
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

func newMerger(runs []pairSource) (*merger, error) {
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

// groupedPartition builds a reduce task's input: the partition's pairs with
// keys above after (all when after is nil), merged and grouped by key, keys
// strictly ascending, up to MaxTaskBytes. When the partition holds more,
// more is true and last is the last key included: the rest goes to a
// follow-up reduce task of the same partition.
func (e *Engine) groupedPartition(ctx context.Context, j *job, r int, after []byte) (input, last []byte, more bool, err error) {
	runs, closeRuns, err := e.partitionRuns(ctx, j, r)
	if err != nil {
		return nil, nil, false, err
	}
	defer closeRuns()
	m, err := newMerger(runs)
	if err != nil {
		return nil, nil, false, fmt.Errorf("partition %d: %w", r, err)
	}
	var out, group []byte
	var key []byte
	count := 0
	flush := func() error {
		if count == 0 {
			return nil
		}
		g := abi.AppendGroupHeader(nil, key, count)
		if len(g)+len(group) > e.cfg.MaxTaskBytes {
			return fmt.Errorf("%w: key %q of partition %d has %d bytes of values, more than the %d a task may carry",
				broker.ErrInvalid, truncate(string(key), 40), r, len(group), e.cfg.MaxTaskBytes)
		}
		if len(out)+len(g)+len(group) > e.cfg.MaxTaskBytes {
			more = true
			return errFull
		}
		out = append(append(out, g...), group...)
		last, group, count = key, group[:0], 0
		return nil
	}
	for {
		k, v, ok, err := m.next()
		if err != nil {
			return nil, nil, false, fmt.Errorf("partition %d: %w", r, err)
		}
		if !ok {
			break
		}
		if after != nil && bytes.Compare(k, after) <= 0 {
			continue
		}
		if count > 0 && !bytes.Equal(k, key) {
			if err := flush(); errors.Is(err, errFull) {
				return out, last, true, nil
			} else if err != nil {
				return nil, nil, false, err
			}
		}
		key = k
		group = abi.AppendValue(group, v)
		count++
	}
	if err := flush(); errors.Is(err, errFull) {
		return out, last, true, nil
	} else if err != nil {
		return nil, nil, false, err
	}
	return out, last, false, nil
}

// errFull stops filling a reduce task: the rest goes to a follow-up task.
var errFull = errors.New("reduce task full")

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
	var runs []pairSource
	err := e.messages(ctx, outQueue(id), func(m broker.Message) error {
		runs = append(runs, abi.NewPairReader(m.Value))
		return nil
	})
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
