package engine

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/wasm/abi"
)

// Map output reaches a partition queue as one run per map task and
// partition (runs.go); reduce output reaches the output queue as one run
// per reduce task. Both are read by merging the sorted runs as streams, so
// no step sorts, and memory holds one pair per run at a time.
//
// A partition too large for one reduce task is reduced by several in turn:
// each takes whole keys up to the task's limit, and its result carries the
// message of the next, which says where in every run the rest begins (a
// cursor), so no task reads again what an earlier one took.

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

// run is one open run of a merge: its message id, for cursors.
type run struct {
	id  uint64
	src pairSource
}

// openRuns opens every run of queue from where cursor says (every run from
// its start when cursor is nil; only the runs it names otherwise, since a
// run it leaves out was read to its end). close closes their files.
func (e *Engine) openRuns(ctx context.Context, j *job, queue string, cursor []runCursor) (runs []run, close func(), err error) {
	var files []io.Closer
	close = func() {
		for _, f := range files {
			f.Close()
		}
	}
	at := map[uint64]int64{}
	for _, c := range cursor {
		at[c.Run] = c.Offset
	}
	err = e.messages(ctx, queue, func(m broker.Message) error {
		off, ok := at[m.ID]
		if cursor != nil && !ok {
			return nil
		}
		delete(at, m.ID)
		src, f, err := openRun(j, m.Value, off)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Key(), err)
		}
		if f != nil {
			files = append(files, f)
		}
		runs = append(runs, run{id: m.ID, src: src})
		return nil
	})
	if err == nil && len(at) > 0 {
		err = fmt.Errorf("the cursor names %d runs that %s does not hold", len(at), queue)
	}
	if err != nil {
		close()
		return nil, nil, err
	}
	return runs, close, nil
}

// merger is a k-way merge of sorted runs.
type merger struct {
	h    mergeHeap
	runs []run
}

// mergeItem is a run's next pair: at is where it starts in the run.
type mergeItem struct {
	key, value []byte
	at         int64
	run        int
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

func newMerger(runs []run) (*merger, error) {
	m := &merger{runs: runs}
	for i := range runs {
		it, ok, err := m.read(i)
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, it)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// read reads run i's next pair.
func (m *merger) read(i int) (mergeItem, bool, error) {
	src := m.runs[i].src
	at := src.Offset()
	k, v, ok := src.Next()
	if !ok {
		return mergeItem{}, false, src.Err()
	}
	return mergeItem{key: k, value: v, at: at, run: i}, true, nil
}

// next returns the smallest remaining pair.
func (m *merger) next() (it mergeItem, ok bool, err error) {
	if len(m.h) == 0 {
		return it, false, nil
	}
	it = m.h[0]
	nx, more, err := m.read(it.run)
	if err != nil {
		return it, false, err
	}
	if more {
		m.h[0] = nx
		heap.Fix(&m.h, 0)
	} else {
		heap.Pop(&m.h)
	}
	return it, true, nil
}

// heads returns, per run, where its next unread pair starts (-1 when the
// run is read to its end).
func (m *merger) heads() []int64 {
	out := make([]int64, len(m.runs))
	for i := range out {
		out[i] = -1
	}
	for _, it := range m.h {
		out[it.run] = it.at
	}
	return out
}

// reduceInput builds a reduce task's input: the partition's pairs (those
// the task's cursor leaves, for a follow-up), merged and grouped by key,
// keys strictly ascending, up to the task input limit. When the partition
// holds more, the input carries the message of the follow-up task that
// takes the rest.
func (e *Engine) reduceInput(ctx context.Context, j *job, rt reduceTask) (taskInput, error) {
	runs, closeRuns, err := e.openRuns(ctx, j, partQueue(j.rec.ID, rt.Partition), rt.Cursor)
	if err != nil {
		return taskInput{}, err
	}
	defer closeRuns()
	m, err := newMerger(runs)
	if err != nil {
		return taskInput{}, fmt.Errorf("partition %d: %w", rt.Partition, err)
	}
	g := grouper{limit: e.taskInputLimit(j, PhaseReduce), partition: rt.Partition,
		since: make([]int64, len(runs)), starts: make([]int64, len(runs))}
	for {
		it, ok, err := m.next()
		if err != nil {
			return taskInput{}, fmt.Errorf("partition %d: %w", rt.Partition, err)
		}
		if !ok {
			break
		}
		e.mergedPairs.Add(1)
		if rt.After != nil && bytes.Compare(it.key, rt.After) <= 0 {
			continue // a follow-up of a task that had no cursor
		}
		if err := g.add(it); errors.Is(err, errFull) {
			return g.input(rt.Partition, runs, m.heads(), &it)
		} else if err != nil {
			return taskInput{}, err
		}
	}
	if err := g.flush(); errors.Is(err, errFull) {
		return g.input(rt.Partition, runs, m.heads(), nil)
	} else if err != nil {
		return taskInput{}, err
	}
	return taskInput{data: g.out}, nil
}

// errFull stops filling a reduce task: the rest goes to a follow-up task.
var errFull = errors.New("reduce task full")

// grouper gathers merged pairs into a reduce task's grouped input, whole
// keys at a time, and remembers where in each run the key it is gathering
// began, so a follow-up can start there.
type grouper struct {
	limit     int
	partition int
	out       []byte
	key       []byte // the key being gathered
	group     []byte // its values, encoded
	count     int
	last      []byte // the last key in out

	// For each run, where its first pair of the gathered key is: starts[i]
	// counts while since[i] is the gathered key's number, gen.
	gen    int64
	since  []int64
	starts []int64
}

// add adds one pair; errFull means it belongs to a key the task has no room
// for, so the task ends before that key.
func (g *grouper) add(it mergeItem) error {
	if g.count > 0 && !bytes.Equal(it.key, g.key) {
		if err := g.flush(); err != nil {
			return err
		}
	}
	if g.count == 0 {
		g.gen++
		g.key = it.key
	}
	g.mark(it)
	g.group = abi.AppendValue(g.group, it.value)
	g.count++
	return nil
}

// mark notes where run it.run's first pair of the gathered key is.
func (g *grouper) mark(it mergeItem) {
	if g.since[it.run] != g.gen {
		g.since[it.run] = g.gen
		g.starts[it.run] = it.at
	}
}

// flush moves the gathered key into the input, if it fits.
func (g *grouper) flush() error {
	if g.count == 0 {
		return nil
	}
	head := abi.AppendGroupHeader(nil, g.key, g.count)
	if len(head)+len(g.group) > g.limit {
		return fmt.Errorf("%w: key %q of partition %d has %d bytes of values, more than the %d a task may carry",
			broker.ErrInvalid, truncate(string(g.key), 40), g.partition, len(g.group), g.limit)
	}
	if len(g.out)+len(head)+len(g.group) > g.limit {
		return errFull
	}
	g.out = append(append(g.out, head...), g.group...)
	g.last, g.group, g.count = g.key, g.group[:0], 0
	return nil
}

// input ends a full task: its input so far, and the follow-up that starts
// at the gathered key (not taken) in every run that has more. pending is
// the pair that did not fit, already read from its run, if any.
func (g *grouper) input(partition int, runs []run, heads []int64, pending *mergeItem) (taskInput, error) {
	if len(g.out) == 0 {
		return taskInput{}, fmt.Errorf("partition %d: a reduce task took nothing", partition) // flush refuses a key that never fits
	}
	var cursor []runCursor
	for i, r := range runs {
		at := heads[i]
		if pending != nil && pending.run == i {
			at = pending.at
		}
		if g.count > 0 && g.since[i] == g.gen {
			at = g.starts[i] // the gathered key's pairs come first
		}
		if at >= 0 {
			cursor = append(cursor, runCursor{Run: r.id, Offset: at})
		}
	}
	next, err := json.Marshal(reduceTask{Partition: partition, After: g.last, Cursor: cursor})
	if err != nil {
		return taskInput{}, err
	}
	return taskInput{data: g.out, followUp: next}, nil
}

// Output streams a done job's output pairs sorted by key (then value).
func (e *Engine) Output(ctx context.Context, id string, fn OutputFunc) error {
	j := e.lookup(ctx, id)
	if j == nil {
		return fmt.Errorf("%w: %s", ErrJobNotFound, truncate(id, 64))
	}
	if st := e.state(j); st != StateDone {
		return fmt.Errorf("%w: job %s is %s", ErrNotDone, id, st)
	}
	runs, closeRuns, err := e.openRuns(ctx, j, outQueue(id), nil)
	if err != nil {
		return err
	}
	defer closeRuns()
	m, err := newMerger(runs)
	if err != nil {
		return err
	}
	for {
		it, ok, err := m.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(it.key, it.value); err != nil {
			return err
		}
	}
}
