package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	wp "github.com/tabreduce/tabreduce/server/workerproto"
)

// The dispatcher hands tasks to workers with credit: it leases tasks from
// the queues of the oldest active jobs first, reads each task's input, and
// sends them in one TASKS frame per worker. Near the end of a phase, when
// nothing is pending, idle workers get backup copies of slow tasks.

// maxLeaseBatch bounds the tasks leased in one store transaction.
const maxLeaseBatch = 256

// leaseSlack is added to a task's timeout for its lease: the engine times
// tasks out itself; the lease only returns tasks whose engine died.
const leaseSlack = 30 * time.Second

func (e *Engine) dispatchLoop() {
	defer e.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond) // streaming jobs poll their input queue
	defer tick.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.kickC:
		case <-tick.C:
		}
		for e.dispatch(e.ctx) {
		}
	}
}

// dispatch runs one round and reports whether it sent anything (another
// round may then find more to do).
func (e *Engine) dispatch(ctx context.Context) bool {
	e.mu.Lock()
	var free []*session
	credit := 0
	for _, s := range e.sessions {
		if s.credit > 0 {
			free = append(free, s)
			credit += s.credit
		}
	}
	var active []*job
	for _, j := range e.jobs {
		if !j.rec.State.Finished() {
			active = append(active, j)
		}
	}
	e.mu.Unlock()
	if credit == 0 || len(active) == 0 {
		return false
	}
	sort.Slice(active, func(a, b int) bool { return active[a].rec.Submitted.Before(active[b].rec.Submitted) })
	sort.Slice(free, func(a, b int) bool { return free[a].credit > free[b].credit })
	out := map[*session][]wp.Task{}
	sent := 0
	for _, j := range active {
		if credit == 0 {
			break
		}
		tasks := e.leaseTasks(ctx, j, min(credit, maxLeaseBatch))
		for _, t := range tasks {
			s := e.pickSession(free, nil)
			if s == nil {
				e.releaseUnsent(ctx, t)
				continue
			}
			out[s] = append(out[s], e.assign(s, t))
			credit--
			sent++
		}
	}
	if sent == 0 {
		sent += e.speculate(free, out)
	}
	for s, ts := range out {
		s.send(wp.Encode(&wp.Tasks{Tasks: ts}))
	}
	return sent > 0
}

// pickSession returns the free session with the most credit, other than
// not, and takes one credit from it.
func (e *Engine) pickSession(free []*session, not *session) *session {
	e.mu.Lock()
	defer e.mu.Unlock()
	var best *session
	for _, s := range free {
		if s != not && s.credit > 0 && (best == nil || s.credit > best.credit) {
			best = s
		}
	}
	if best != nil {
		best.credit--
	}
	return best
}

// leaseTasks leases up to n of a job's pending tasks and builds their input.
func (e *Engine) leaseTasks(ctx context.Context, j *job, n int) []*task {
	e.mu.Lock()
	p := j.phase()
	e.mu.Unlock()
	leases, err := e.store.QueueLease(ctx, broker.QueueLeaseParams{
		Queue: j.queue(p), N: n, Visibility: j.timeout + leaseSlack, Now: time.Now(),
	})
	if err != nil {
		if !errors.Is(err, broker.ErrClosed) {
			e.log.Error("lease tasks", "job", j.rec.ID, "err", err)
		}
		return nil
	}
	if len(leases) == 0 {
		return nil
	}
	e.markStarted(ctx, j)
	tasks := make([]*task, 0, len(leases))
	for _, l := range leases {
		t := &task{job: j, phase: p, lease: l, copies: map[uint64]*taskCopy{}}
		if err := e.taskInput(ctx, t); err != nil {
			e.log.Error("task input", "task", t.name(), "err", err)
			if err := e.end(ctx, j, StateFailed, fmt.Sprintf("%s: %v", t.name(), err)); err != nil {
				e.log.Error("fail job", "job", j.rec.ID, "err", err)
			}
			return nil
		}
		tasks = append(tasks, t)
	}
	e.mu.Lock()
	for _, t := range tasks {
		j.running[t.lease.ID] = t
	}
	e.mu.Unlock()
	return tasks
}

// taskInput reads a task's input: a chunk of the input files, a grouped
// reduce partition, or a streamed message.
func (e *Engine) taskInput(ctx context.Context, t *task) error {
	j := t.job
	switch {
	case j.rec.Spec.Stream:
		t.input = t.lease.Message.Value
	case t.phase == PhaseMap:
		var mt mapTask
		if err := json.Unmarshal(t.lease.Message.Value, &mt); err != nil {
			return fmt.Errorf("map task message: %w", err)
		}
		b, err := j.readChunk(mt)
		if err != nil {
			return err
		}
		t.input, t.offset = b, mt.Global
	default:
		var rt reduceTask
		if err := json.Unmarshal(t.lease.Message.Value, &rt); err != nil {
			return fmt.Errorf("reduce task message: %w", err)
		}
		b, err := e.groupedPartition(ctx, j.rec.ID, rt.Partition)
		if err != nil {
			return err
		}
		t.input = b
	}
	return nil
}

// markStarted moves a queued job to mapping when its first task goes out.
func (e *Engine) markStarted(ctx context.Context, j *job) {
	e.mu.Lock()
	if j.rec.Started != nil {
		e.mu.Unlock()
		return
	}
	now := time.Now().UTC()
	rec := j.rec
	rec.Started = &now
	if rec.State == StateQueued {
		rec.State = StateMapping
	}
	j.setState(rec)
	e.mu.Unlock()
	if err := e.store.KVSet(ctx, []broker.KVEntry{rec.entry()}); err != nil {
		e.log.Error("record job start", "job", rec.ID, "err", err)
	}
}

// assign registers a new copy of t on s and returns the task to send.
func (e *Engine) assign(s *session, t *task) wp.Task {
	e.mu.Lock()
	e.copySeq++
	c := &taskCopy{id: e.copySeq, task: t, session: s, sent: time.Now()}
	t.copies[c.id] = c
	e.copies[c.id] = c
	s.copies[c.id] = c
	if t.started.IsZero() {
		t.started = c.sent
	}
	e.mu.Unlock()
	j := t.job
	wt := wp.Task{
		ID: c.id, Job: j.rec.ID, Phase: wp.PhaseMap, Module: j.rec.Module, Params: j.rec.Spec.Params,
		Reducers: uint16(j.rec.Spec.Reducers), Flags: wp.FlagCombine,
		Attempt: uint32(t.lease.Message.Attempts + 1), Timeout: j.timeout, Offset: t.offset, Input: t.input,
	}
	if t.phase == PhaseReduce {
		wt.Phase, wt.Flags = wp.PhaseReduce, 0
	}
	if j.rec.Spec.Stream {
		wt.Reducers = 1
	}
	return wt
}

// releaseUnsent returns a leased task nobody could take.
func (e *Engine) releaseUnsent(ctx context.Context, t *task) {
	e.mu.Lock()
	delete(t.job.running, t.lease.ID)
	e.mu.Unlock()
	if _, err := e.store.LeaseRelease(ctx, t.job.queue(t.phase), []string{t.lease.ID}); err != nil {
		e.log.Error("return unsent task", "task", t.name(), "err", err)
	}
}

// speculate sends backup copies of slow tasks to workers that have credit
// and nothing else to do (MapReduce's backup tasks): only tasks running for
// more than twice their phase's mean task time (and at least minBackupAge)
// with a single copy, each to a worker other than the one running it. The
// first result wins; the other copy is cancelled.
func (e *Engine) speculate(free []*session, out map[*session][]wp.Task) int {
	const minBackupAge = 500 * time.Millisecond
	now := time.Now()
	e.mu.Lock()
	var slow []*task
	for _, j := range e.jobs {
		if j.rec.State.Finished() || j.rec.Spec.Stream {
			continue
		}
		limit := max(2*j.avgTask[j.phase()], minBackupAge)
		for _, t := range j.running {
			if len(t.copies) == 1 && now.Sub(t.started) > limit {
				slow = append(slow, t)
			}
		}
	}
	e.mu.Unlock()
	sort.Slice(slow, func(a, b int) bool { return slow[a].started.Before(slow[b].started) })
	n := 0
	for _, t := range slow {
		var holder *session
		e.mu.Lock()
		for _, c := range t.copies {
			holder = c.session
		}
		e.mu.Unlock()
		s := e.pickSession(free, holder)
		if s == nil {
			break
		}
		e.log.Info("backup copy of a slow task", "task", t.name(), "running_for", now.Sub(t.started).Round(time.Millisecond), "worker", s.id)
		out[s] = append(out[s], e.assign(s, t))
		n++
	}
	return n
}
