package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Preparing a task is reading its input: a chunk of the job's input files,
// a message of a streaming job's queue, or, for a reduce task, a merge of
// every run of its partition. The dispatcher leaves that to preparers, one
// goroutine per batch, so that it never waits for a disk or a merge; reduce
// merges, the heavy ones, run at most maxMerging at a time. A prepared task
// goes to the worker the dispatcher chose for it, or back to its queue if
// that worker left meanwhile.

// maxMerging bounds the partition merges that run at once.
const maxMerging = 2

// prepared is a task handed to a worker (whose credit it holds) with its
// input still to read.
type prepared struct {
	t *task
	s *session
}

// prepare starts the preparation of a batch of one job's tasks: reduce
// tasks each on their own (a merge at a time), the others together.
func (e *Engine) prepare(batch []prepared) {
	if len(batch) == 0 {
		return
	}
	if batch[0].t.phase != PhaseReduce {
		e.startPreparer(batch, false)
		return
	}
	for _, p := range batch {
		e.startPreparer([]prepared{p}, true)
	}
}

func (e *Engine) startPreparer(batch []prepared, merge bool) {
	e.preparers.Add(1)
	go func() {
		defer e.preparers.Done()
		if merge {
			select {
			case e.merging <- struct{}{}:
				defer func() { <-e.merging }()
			case <-e.ctx.Done():
				return // the leases return to their queues when the broker closes
			}
		}
		out := e.newFrames()
		for _, p := range batch {
			e.prepareOne(e.ctx, p, out)
		}
		out.send()
	}()
}

// taskInput is what preparing a task yields.
type taskInput struct {
	data     []byte
	offset   uint64 // a map chunk's offset in the whole input
	followUp []byte // the message of the reduce task that takes the rest
}

// prepareOne reads one task's input and queues its copy for the chosen
// worker. A task whose input cannot be read (a message out of bounds, a
// damaged run, a panic) fails its job: retrying would fail the same way.
func (e *Engine) prepareOne(ctx context.Context, p prepared, out *outFrames) {
	t, s := p.t, p.s
	j := t.job
	in, err := guard(e.log, func() (taskInput, error) { return e.readInput(ctx, t) })
	defer e.nudgeGather()
	e.mu.Lock()
	e.preparing--
	switch {
	case err != nil:
		s.credit++
		e.mu.Unlock()
		if ctx.Err() != nil {
			return // shutting down: the lease comes back at the next start
		}
		e.log.Error("task input", "task", t.name(), "err", err)
		if err := e.end(ctx, j, StateFailed, fmt.Sprintf("%s: %v", t.name(), err)); err != nil {
			e.log.Error("fail job", "job", j.rec.ID, "err", err)
		}
		return
	case !t.readyLocked(in.data, in.offset, in.followUp):
		s.credit++ // its job ended meanwhile
		e.mu.Unlock()
		return
	case e.sessions[s.id] != s:
		t.giveBackLocked() // its worker left meanwhile
		e.mu.Unlock()
		if _, err := e.q.Release(ctx, j.queue(t.phase), []string{t.lease.ID}); err != nil {
			e.log.Error("return a task whose worker left", "task", t.name(), "err", err)
		}
		return
	}
	out.add(s, e.assignLocked(s, t))
	e.mu.Unlock()
}

// readInput reads a task's input: a streamed message, a chunk of the input
// files, or a grouped reduce partition. Every task message is checked
// before it is used.
func (e *Engine) readInput(ctx context.Context, t *task) (taskInput, error) {
	if testHookReadInput != nil {
		testHookReadInput(t)
	}
	j := t.job
	switch {
	case j.rec.Spec.Stream:
		return taskInput{data: t.lease.Message.Value}, nil
	case t.phase == PhaseMap:
		mt, err := decodeMapTask(t.lease.Message.Value, j.rec.Files, e.taskInputLimit(j, PhaseMap))
		if err != nil {
			return taskInput{}, err
		}
		b, err := j.readChunk(mt)
		return taskInput{data: b, offset: mt.Global}, err
	}
	rt, err := decodeReduceTask(t.lease.Message.Value, j.rec.Spec.Reducers)
	if err != nil {
		return taskInput{}, err
	}
	return e.reduceInput(ctx, j, rt)
}

// testHookReadInput, when set by a test, runs before a task's input is
// read (to make it panic, say).
var testHookReadInput func(*task)

// errPanic marks a panic caught in the engine's handling of one job: the
// job fails with it, the process goes on.
var errPanic = errors.New("internal error")

// guard runs fn, turning a panic into an errPanic error (and logging its
// stack), so that a bug met on one job's data fails that job only.
func guard[T any](log *slog.Logger, fn func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in the engine", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return fn()
}
