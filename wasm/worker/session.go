package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// errCancelled is the cause of a task context the server cancelled; the
// worker sends nothing for such a task.
var errCancelled = errors.New("cancelled by the server")

// session is one connection's worth of work: from WELCOME until the
// connection ends.
type session struct {
	o       *Options
	t       Transport
	welcome *workerproto.Welcome
	log     *slog.Logger
	x       executor
	out     outbox
	queue   chan *taskRun // accepted tasks waiting for a slot
	limit   int           // most tasks accepted and not yet answered
	busy    atomic.Int32  // slots running a task

	mu     sync.Mutex
	active map[uint64]*taskRun // accepted, not answered, not cancelled
	ended  bool                // the session is over: admit nothing more
}

// taskRun is one accepted task. Its Task's byte fields alias the TASKS frame
// it came in, which nobody else holds.
type taskRun struct {
	task     workerproto.Task
	ctx      taskContext
	started  atomic.Bool
	progress atomic.Uint32
}

// serveSession dials, says HELLO and serves the session until it ends.
// welcomed reports that the server accepted the session.
func serveSession(ctx context.Context, o *Options) (welcomed bool, err error) {
	hctx, cancel := context.WithTimeout(ctx, o.HandshakeTimeout)
	defer cancel()
	t, err := o.Dial(hctx)
	if err != nil {
		return false, err
	}
	w, err := handshake(hctx, t, o)
	if err != nil {
		t.Close("handshake failed")
		return false, err
	}
	return true, newSession(o, t, w).run(ctx)
}

// handshake sends HELLO and waits for WELCOME.
func handshake(ctx context.Context, t Transport, o *Options) (*workerproto.Welcome, error) {
	hello := workerproto.Encode(&workerproto.Hello{
		Protocol: workerproto.ProtocolVersion, Kind: o.Kind, Slots: uint16(o.Slots),
		UserAgent: o.UserAgent, Name: o.Name,
	})
	if err := t.Send(ctx, hello); err != nil {
		return nil, fmt.Errorf("send HELLO: %w", err)
	}
	b, err := t.Recv(ctx)
	if err != nil {
		return nil, fmt.Errorf("await WELCOME: %w", err)
	}
	f, err := workerproto.DecodeLimit(b, o.MaxFrameBytes)
	if err != nil {
		return nil, fmt.Errorf("await WELCOME: %w", err)
	}
	switch f := f.(type) {
	case *workerproto.Welcome:
		return f, nil
	case *workerproto.Error:
		return nil, f
	}
	return nil, fmt.Errorf("await WELCOME: got %s", f.Type())
}

func newSession(o *Options, t Transport, w *workerproto.Welcome) *session {
	prefetch := min(max(int(w.PrefetchPerSlot), 1), MaxQueuedPerSlot)
	limit := o.Slots * prefetch
	return &session{
		o: o, t: t, welcome: w,
		log:   o.Logger.With("worker", w.WorkerID),
		x:     executor{r: o.Runner, modules: o.Modules, maxResult: int(w.MaxResultBytes)},
		out:   outbox{wake: make(chan struct{}, 1)},
		limit: limit,
		// A cancelled task leaves active at once but stays in the queue
		// until a slot pops it: the slack keeps a server that reuses the
		// credit of cancelled tasks at once from being refused.
		queue:  make(chan *taskRun, 2*limit),
		active: map[uint64]*taskRun{},
	}
}

// run serves the session until the connection fails, the server sends
// ERROR, or ctx ends, and returns why once its goroutines are done.
func (s *session) run(ctx context.Context) error {
	s.log.Info("worker session started", "slots", s.o.Slots, "heartbeat", s.welcome.HeartbeatInterval,
		"prefetch", s.welcome.PrefetchPerSlot)
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { cancel(s.read(ctx)) })
	wg.Go(func() { cancel(s.write(ctx)) })
	for range s.o.Slots {
		wg.Go(func() { s.slot(ctx) })
	}
	<-ctx.Done()
	err := context.Cause(ctx)
	s.end(ctx.Err(), err)
	reason := "worker shutting down"
	if !errors.Is(err, context.Canceled) {
		reason = err.Error()
	}
	s.t.Close(reason)
	wg.Wait()
	return err
}

// read receives the server's frames and routes each verb. It never waits
// for a task: TASKS only queue them.
func (s *session) read(ctx context.Context) error {
	for {
		b, err := s.t.Recv(ctx)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		f, err := workerproto.DecodeLimit(b, s.o.MaxFrameBytes)
		if err != nil {
			return fmt.Errorf("from server: %w", err)
		}
		switch f := f.(type) {
		case *workerproto.Tasks:
			s.accept(ctx, f.Tasks)
		case *workerproto.Cancel:
			s.cancel(f.TaskIDs)
		case *workerproto.Error:
			return f
		default:
			return fmt.Errorf("from server: unexpected %s frame", f.Type())
		}
	}
}

// accept queues tasks for the slots. A task beyond the limit (the server
// ignored WELCOME's prefetch) or with the id of an active task fails at once
// instead of blocking the reader.
func (s *session) accept(ctx context.Context, tasks []workerproto.Task) {
	for i := range tasks {
		tr := &taskRun{task: tasks[i]}
		tr.ctx.parent = ctx
		if msg := s.admit(tr); msg != "" {
			s.out.fail(workerproto.Failure{TaskID: tr.task.ID, Kind: workerproto.FailureInternal, Message: msg})
		}
	}
}

// admit registers and queues a task, or says why it cannot.
func (s *session) admit(tr *taskRun) (refusal string) {
	id := tr.task.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return "worker session ended"
	}
	if _, dup := s.active[id]; dup {
		return "task is already running on this worker"
	}
	if len(s.active) >= s.limit {
		return fmt.Sprintf("worker over capacity: %d tasks accepted", len(s.active))
	}
	select {
	case s.queue <- tr:
	default:
		return fmt.Sprintf("worker over capacity: %d tasks queued", len(s.queue))
	}
	s.active[id] = tr
	return ""
}

// cancel aborts tasks, queued or running, and forgets them at once; unknown
// ids are ignored.
func (s *session) cancel(ids []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if tr, ok := s.active[id]; ok {
			tr.ctx.end(context.Canceled, errCancelled)
			delete(s.active, id)
		}
	}
}

// finish forgets a task unless a cancel did already (and the id may since
// name a new task).
func (s *session) finish(tr *taskRun) {
	s.mu.Lock()
	if s.active[tr.task.ID] == tr {
		delete(s.active, tr.task.ID)
	}
	s.mu.Unlock()
}

// end ends the contexts of the session's open tasks, as the session ends
// with err for the reason why, and admits no more.
func (s *session) end(err, why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	for _, tr := range s.active {
		tr.ctx.end(err, why)
	}
}

// slotState is one of a session's places to run a task, and what it keeps from
// one task to the next: its sort buffers, its deadline timer, and a context
// whose progress sink stores the running task's progress.
type slotState struct {
	sc      scratch
	timer   slotTimer
	ctx     context.Context
	running *taskRun // read by the progress sink, on the slot's goroutine
}

// slot runs queued tasks one at a time until the session ends.
func (s *session) slot(ctx context.Context) {
	sl := &slotState{}
	sl.ctx = runner.WithProgress(ctx, func(permille uint32) {
		if tr := sl.running; tr != nil {
			tr.progress.Store(callPercent(&tr.task, permille))
		}
	})
	defer sl.timer.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case tr := <-s.queue:
			s.execute(ctx, tr, sl)
		}
	}
}

// execute runs one task and hands its outcome to the writer, unless the
// server cancelled it or the session is over.
func (s *session) execute(ctx context.Context, tr *taskRun, sl *slotState) {
	t := &tr.task
	var (
		res workerproto.Result
		err error
	)
	if err = tr.ctx.Err(); err == nil {
		tr.started.Store(true)
		s.busy.Add(1)
		tr.ctx.parent, sl.running = sl.ctx, tr
		start := time.Now()
		sl.timer.start(&tr.ctx, start, t.Timeout)
		res, err = s.x.runTask(&tr.ctx, t, &sl.sc, &tr.progress)
		sl.timer.stop()
		res.Elapsed = time.Since(start)
		sl.running = nil
		s.busy.Add(-1)
	}
	cause := tr.ctx.cause()
	s.finish(tr)
	switch {
	case ctx.Err() != nil:
		return // nobody to tell: the server reassigns the session's tasks
	case errors.Is(cause, errCancelled):
		s.log.Debug("task cancelled", "task", t.ID, "job", t.Job)
	case err != nil:
		kind := failureKind(err)
		s.log.Info("task failed", "task", t.ID, "job", t.Job, "phase", t.Phase, "attempt", t.Attempt, "kind", kind, "err", err)
		s.out.fail(workerproto.Failure{TaskID: t.ID, Kind: kind, Message: truncate(err.Error(), maxFailureMessage)})
	default:
		if how := s.o.faults.corrupt(&res); how != "" {
			s.log.Warn("faulty worker: result corrupted on purpose", "task", t.ID, "job", t.Job, "phase", t.Phase, "fault", how)
		}
		s.out.done(res)
	}
}

// maxFailureMessage bounds the message of a failure.
const maxFailureMessage = 4 << 10

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// heartbeat describes the worker's state now.
func (s *session) heartbeat() *workerproto.Heartbeat {
	h := &workerproto.Heartbeat{FreeSlots: uint16(max(s.o.Slots-int(s.busy.Load()), 0))}
	s.mu.Lock()
	for id, tr := range s.active {
		if tr.started.Load() {
			h.Progress = append(h.Progress, workerproto.Progress{TaskID: id, Percent: uint8(tr.progress.Load())})
		}
	}
	s.mu.Unlock()
	return h
}
