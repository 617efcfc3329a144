package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/broker"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
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

// dispatchLoop runs dispatch rounds whenever something may have changed:
// a worker came or has credit again, a task was pushed or returned (the
// broker's events), a job moved on. Nothing polls.
func (e *Engine) dispatchLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.kickC:
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
	sort.Slice(free, func(a, b int) bool { return free[a].credit > free[b].credit })
	e.mu.Unlock()
	if credit == 0 || len(active) == 0 {
		return false
	}
	sort.Slice(active, func(a, b int) bool { return active[a].rec.Submitted.Before(active[b].rec.Submitted) })
	out := map[*session][]wp.Task{}
	sent := e.dispatchChecks(free, active, out)
	credit -= sent
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
	return pickLocked(free, func(s *session) bool { return s == not })
}

// pickLocked returns the free session with the most credit that skip does
// not exclude, and takes one credit from it. e.mu held.
func pickLocked(free []*session, skip func(*session) bool) *session {
	var best *session
	for _, s := range free {
		if s.credit > 0 && !s.standing.Flagged && !skip(s) && (best == nil || s.credit > best.credit) {
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
	leases, err := e.q.Lease(ctx, j.queue(p), n, j.timeout+leaseSlack)
	if errors.Is(err, broker.ErrQueuePaused) {
		return nil // a streaming job's input queue was paused: wait for it to resume
	}
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
		b, last, more, err := e.groupedPartition(ctx, j, rt.Partition, rt.After)
		if err != nil {
			return err
		}
		t.input = b
		if more {
			t.followUp, _ = json.Marshal(reduceTask{Partition: rt.Partition, After: last})
		}
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
	if err := e.putRecords(ctx, rec.record()); err != nil {
		e.log.Error("record job start", "job", rec.ID, "err", err)
	}
}

// assign registers a new copy of t on s and returns the task to send.
func (e *Engine) assign(s *session, t *task) wp.Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.assignLocked(s, t)
}

// assignLocked is assign with e.mu held.
func (e *Engine) assignLocked(s *session, t *task) wp.Task {
	e.copySeq++
	c := &taskCopy{id: e.copySeq, task: t, session: s, sent: time.Now()}
	t.copies[c.id] = c
	e.copies[c.id] = c
	s.copies[c.id] = c
	if t.ran == nil {
		t.ran = map[*session]bool{}
	}
	t.ran[s] = true
	if t.started.IsZero() {
		t.started = c.sent
	}
	return taskMessage(t, c.id)
}

// taskMessage is the TASKS entry of a copy of t.
func taskMessage(t *task, id uint64) wp.Task {
	j := t.job
	wt := wp.Task{
		ID: id, Job: j.rec.ID, Phase: wp.PhaseMap, Module: j.rec.Module, Params: j.mapParams,
		Reducers: uint16(j.partitions()), Flags: wp.FlagCombine,
		Attempt: uint32(t.lease.Message.Attempts + 1), Timeout: j.timeout, Offset: t.offset, Input: t.input,
	}
	if t.phase == PhaseReduce {
		wt.Phase, wt.Flags, wt.Module, wt.Params = wp.PhaseReduce, 0, j.rec.reducer(), j.reduceParams
	}
	return wt
}

// releaseUnsent returns a leased task nobody could take.
func (e *Engine) releaseUnsent(ctx context.Context, t *task) {
	e.mu.Lock()
	delete(t.job.running, t.lease.ID)
	e.mu.Unlock()
	if _, err := e.q.Release(ctx, t.job.queue(t.phase), []string{t.lease.ID}); err != nil {
		e.log.Error("return unsent task", "task", t.name(), "err", err)
	}
}

// speculate sends backup copies of slow tasks to workers that have credit
// and nothing else to do (MapReduce's backup tasks): only tasks running for
// more than twice their phase's mean task time (and at least minBackupAge)
// with a single copy, each to a worker other than the one running it. The
// first result wins; the other copy is cancelled.
func (e *Engine) speculate(free []*session, out map[*session][]wp.Task) int {
	now := time.Now()
	e.mu.Lock()
	var slow []*task
	e.eachSlowLocked(now, func(t *task) bool {
		slow = append(slow, t)
		return true
	})
	e.mu.Unlock()
	sort.Slice(slow, func(a, b int) bool { return slow[a].started.Before(slow[b].started) })
	n := 0
	for _, t := range slow {
		e.mu.Lock()
		s := pickLocked(free, func(s *session) bool { return t.ran[s] })
		e.mu.Unlock()
		if s == nil {
			break
		}
		e.log.Info("backup copy of a slow task", "task", t.name(), "running_for", now.Sub(t.started).Round(time.Millisecond), "worker", s.id)
		e.mu.Lock()
		t.job.backups++
		e.mu.Unlock()
		wt := e.assign(s, t)
		e.mu.Lock()
		if c := e.copies[wt.ID]; c != nil {
			c.check = api.CheckBackup
		}
		e.mu.Unlock()
		out[s] = append(out[s], wt)
		n++
	}
	return n
}

// minBackupAge is the least a task runs before it may get a backup copy.
const minBackupAge = 500 * time.Millisecond

// eachSlowLocked calls fn with every task that deserves a backup copy at
// now (one copy, nothing held, running for more than twice its phase's
// mean and at least minBackupAge) until fn returns false. e.mu held.
func (e *Engine) eachSlowLocked(now time.Time, fn func(*task) bool) {
	for _, j := range e.jobs {
		if j.rec.State.Finished() || j.rec.Spec.Stream {
			continue
		}
		limit := max(2*j.avgTask[j.phase()], minBackupAge)
		for _, t := range j.running {
			if len(t.copies) == 1 && len(t.held) == 0 && now.Sub(t.started) > limit && !fn(t) {
				return
			}
		}
	}
}

// anySlowLocked reports whether a task deserves a backup copy and some
// worker has credit to run one. e.mu held.
func (e *Engine) anySlowLocked(now time.Time) bool {
	credit := false
	for _, s := range e.sessions {
		credit = credit || s.credit > 0
	}
	found := false
	if credit {
		e.eachSlowLocked(now, func(*task) bool { found = true; return false })
	}
	return found
}

// dispatchChecks hands out verification work before new tasks: replicas of
// held results, each to a worker that has not run the task (preferring
// another address), and a known-answer probe to each new untrusted worker.
// A task whose replica no connected worker could run is checked by the
// server itself. It returns the copies it sent.
func (e *Engine) dispatchChecks(free []*session, active []*job, out map[*session][]wp.Task) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	sent := 0
	for _, j := range active {
		for _, t := range j.running {
			for t.wantCopies > 0 {
				s := pickLocked(free, func(s *session) bool { return t.ran[s] || t.ranFrom(s.peer.RemoteAddr) })
				if s == nil {
					s = pickLocked(free, func(s *session) bool { return t.ran[s] })
				}
				if s == nil {
					if !e.anyCanReplicate(t) {
						t.wantCopies = 0
						e.startServerCheck(t)
					}
					break
				}
				t.wantCopies--
				e.verified(j, VerifyReplica)
				wt := e.assignLocked(s, t)
				e.copies[wt.ID].check = api.CheckReplica
				out[s] = append(out[s], wt)
				sent++
			}
		}
	}
	for _, s := range free {
		if s.probed || s.peer.Trusted || s.credit == 0 || s.standing.Flagged {
			continue
		}
		for _, j := range active {
			if len(j.known) == 0 || j.verify == VerifyNone {
				continue
			}
			k := j.known[len(j.known)-1]
			probe := &task{job: j, phase: k.task.phase, lease: k.task.lease, input: k.task.input, offset: k.task.offset, copies: map[uint64]*taskCopy{}}
			s.credit--
			s.probed = true
			e.verified(j, VerifyProbe)
			wt := e.assignLocked(s, probe)
			e.copies[wt.ID].probe = &k
			e.copies[wt.ID].check = api.CheckProbe
			out[s] = append(out[s], wt)
			sent++
			break
		}
	}
	return sent
}

// anyCanReplicate reports whether a connected worker that has not run t
// could run a replica later. e.mu held.
func (e *Engine) anyCanReplicate(t *task) bool {
	for _, s := range e.sessions {
		if !t.ran[s] && !s.standing.Flagged {
			return true
		}
	}
	return false
}

// ranFrom reports whether a worker at addr ran a copy of t.
func (t *task) ranFrom(addr string) bool {
	for s := range t.ran {
		if s.peer.RemoteAddr == addr {
			return true
		}
	}
	return false
}
