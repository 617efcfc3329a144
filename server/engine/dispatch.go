package engine

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/broker"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// The dispatcher hands tasks to workers with credit: it leases tasks from
// the queues of the oldest active jobs first and gives each a worker at
// once (taking one of its credits), then leaves reading the tasks' input
// to the preparers (prepare.go), so a large chunk or a partition merge
// never holds up the other jobs' tasks. Verification work (replicas,
// probes) goes first; near the end of a phase, when nothing is pending,
// idle workers get backup copies of slow tasks.

// maxLeaseBatch bounds the tasks leased in one store transaction.
const maxLeaseBatch = 256

// leaseRetry is how soon the dispatcher tries again after the store failed
// a lease.
const leaseRetry = 500 * time.Millisecond

// leaseSlack is added to a task's timeout for its lease: the engine times
// tasks out itself; the lease only returns tasks whose engine died.
const leaseSlack = 30 * time.Second

// dispatchLoop runs dispatch rounds whenever something may have changed:
// a worker came or has credit again, a task was pushed or returned (the
// broker's events), a job moved on, a task grew slow (the watchdog).
// Nothing polls.
func (e *Engine) dispatchLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kickC:
		}
		for e.dispatch(ctx) {
		}
	}
}

// dispatch runs one round and reports whether it handed anything out
// (another round may then find more to do).
func (e *Engine) dispatch(ctx context.Context) bool {
	free, credit, active := e.dispatchable()
	if credit == 0 || len(active) == 0 {
		return false
	}
	out := e.newFrames()
	sent := e.dispatchChecks(free, active, out)
	credit -= sent
	for _, j := range active {
		if credit <= 0 {
			break
		}
		n := e.leaseTasks(ctx, j, free, min(credit, maxLeaseBatch))
		credit -= n
		sent += n
	}
	if sent == 0 {
		sent += e.speculate(free, out)
	}
	out.send()
	return sent > 0
}

// dispatchable returns the sessions with credit (most first), their credit
// and the unfinished jobs (oldest first).
func (e *Engine) dispatchable() (free []*session, credit int, active []*job) {
	e.mu.Lock()
	for _, j := range e.jobs {
		if !j.rec.State.Finished() {
			active = append(active, j)
		}
	}
	if len(active) == 0 {
		// Nothing to hand out: a round per connecting worker must not walk
		// (and copy) every session, or thousands connecting cost their
		// square.
		e.mu.Unlock()
		return nil, 0, nil
	}
	for _, s := range e.sessions {
		if s.credit > 0 && !s.standing.Flagged {
			free = append(free, s)
			credit += s.credit
		}
	}
	e.mu.Unlock()
	sort.Slice(free, func(a, b int) bool { return free[a].credit > free[b].credit })
	sort.Slice(active, func(a, b int) bool { return active[a].rec.Submitted.Before(active[b].rec.Submitted) })
	return free, credit, active
}

// pickLocked returns the free session with the most credit that skip does
// not exclude, and takes one credit from it. A throttled session is free
// only while it holds nothing. e.mu held.
func pickLocked(free []*session, skip func(*session) bool) *session {
	var best *session
	for _, s := range free {
		if s.credit > 0 && !s.standing.Flagged && !(s.throttled && len(s.copies) > 0) &&
			(skip == nil || !skip(s)) && (best == nil || s.credit > best.credit) {
			best = s
		}
	}
	if best != nil {
		best.credit--
	}
	return best
}

// leaseTasks leases up to n of a job's pending tasks (taking what it holds
// leased ahead first, ahead.go), gives each a worker and hands them to the
// preparers; it returns how many it handed out.
func (e *Engine) leaseTasks(ctx context.Context, j *job, free []*session, n int) int {
	now := time.Now()
	e.mu.Lock()
	p := j.phase()
	leases, back := e.takeAheadLocked(j, p, n, now)
	ask := e.toLeaseLocked(j, n-len(leases))
	e.leasing = ask > 0
	e.mu.Unlock()
	e.giveBack(ctx, j.queue(p), back)
	if ask > 0 {
		got, err := e.q.Lease(ctx, j.queue(p), ask, j.timeout+leaseSlack)
		e.mu.Lock()
		e.leasing = false
		e.mu.Unlock()
		e.nudgeGather()
		if err != nil && !errors.Is(err, broker.ErrQueuePaused) && !errors.Is(err, broker.ErrClosed) {
			// A streaming job's paused input queue is resumed with a kick;
			// the store may be back in a moment (a restart) with no event
			// to say so: look again then.
			e.log.Error("lease tasks", "job", j.rec.ID, "err", err)
			time.AfterFunc(leaseRetry, e.kick)
		}
		leases = append(leases, got...)
	}
	if len(leases) == 0 {
		return 0
	}
	e.markStarted(ctx, j)
	var batch []prepared
	var unsent []broker.Lease
	e.mu.Lock()
	for _, l := range leases {
		var s *session
		if !j.rec.State.Finished() { // it may have ended while we leased
			s = pickLocked(free, nil)
		}
		if s == nil {
			unsent = append(unsent, l)
			continue
		}
		batch = append(batch, prepared{t: j.newTaskLocked(p, l), s: s})
	}
	e.preparing += len(batch)
	e.intake.addLocked(len(batch), now)
	back = e.holdLocked(j, p, unsent, now)
	e.mu.Unlock()
	e.giveBack(ctx, j.queue(p), back)
	e.prepare(batch)
	return len(batch)
}

// markStarted moves a queued job to mapping when its first task goes out.
func (e *Engine) markStarted(ctx context.Context, j *job) {
	e.mu.Lock()
	if j.rec.Started != nil || (e.shared() && j.coord == nil) {
		e.mu.Unlock()
		return // when servers share the store, only the coordinator writes it
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

// assignLocked sends a new copy of t to s (whose credit the caller took)
// and returns the task to put in a frame. e.mu held.
func (e *Engine) assignLocked(s *session, t *task) wp.Task {
	return taskMessage(t, e.addCopyLocked(s, t).id)
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

// speculate sends backup copies of slow tasks to workers that have credit
// and nothing else to do (MapReduce's backup tasks): only tasks running for
// more than twice their phase's mean task time (and at least minBackupAge)
// with a single copy, each to a worker other than the one running it. The
// first result wins; the other copy is cancelled.
func (e *Engine) speculate(free []*session, out *outFrames) int {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	var slow []*task
	e.eachSlowLocked(now, func(t *task) bool {
		slow = append(slow, t)
		return true
	})
	sort.Slice(slow, func(a, b int) bool { return slow[a].started.Before(slow[b].started) })
	n := 0
	for _, t := range slow {
		s := pickLocked(free, func(s *session) bool { return t.ranOn(s) })
		if s == nil {
			break
		}
		e.log.Info("backup copy of a slow task", "task", t.name(), "running_for", now.Sub(t.started).Round(time.Millisecond), "worker", s.id)
		t.job.backups++
		c := e.addCopyLocked(s, t)
		c.check = api.CheckBackup
		out.add(s, taskMessage(t, c.id))
		n++
	}
	return n
}

// minBackupAge is the least a task runs before it may get a backup copy.
const minBackupAge = 500 * time.Millisecond

// eachSlowLocked calls fn with every task that deserves a backup copy at
// now (task.slow: one copy, nothing held, running for more than twice its
// phase's mean and at least minBackupAge) until fn returns false. e.mu
// held.
func (e *Engine) eachSlowLocked(now time.Time, fn func(*task) bool) {
	for _, j := range e.jobs {
		if j.rec.State.Finished() || j.rec.Spec.Stream {
			continue
		}
		limit := max(2*j.avgTask[j.phase()], minBackupAge)
		for _, t := range j.running {
			if t.slow(now, limit) && !fn(t) {
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
func (e *Engine) dispatchChecks(free []*session, active []*job, out *outFrames) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	sent := 0
	for _, j := range active {
		for _, t := range j.running {
			for t.state == taskRunning && t.wantCopies > 0 {
				s := e.pickReplicaLocked(free, t)
				if s == nil {
					if !e.anyCanReplicate(t) {
						t.noReplicaLocked() // the server runs it instead
						e.verified(j, VerifySpotCheck)
						e.startServerCheck(t)
					}
					break
				}
				t.replicaSentLocked()
				e.verified(j, VerifyReplica)
				c := e.addCopyLocked(s, t)
				c.check = api.CheckReplica
				out.add(s, taskMessage(t, c.id))
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
			s.credit--
			s.probed = true
			e.verified(j, VerifyProbe)
			probe := newProbeLocked(&k)
			c := e.addCopyLocked(s, probe)
			c.probe = &k
			c.check = api.CheckProbe
			out.add(s, taskMessage(probe, c.id))
			sent++
			break
		}
	}
	return sent
}

// pickReplicaLocked picks the worker for a replica of t among the free
// ones that have not run it: a trusted worker first (its result outranks
// any untrusted one), then one on a network none of t's copies ran on, and
// one on such a network only where no connected worker of another network
// could take it later (otherNetworkLocked). e.mu held.
func (e *Engine) pickReplicaLocked(free []*session, t *task) *session {
	if s := pickLocked(free, func(s *session) bool { return t.ranOn(s) || !s.peer.Trusted }); s != nil {
		return s
	}
	if s := pickLocked(free, func(s *session) bool { return t.ranOn(s) || t.ranOnNetwork(s.net) }); s != nil {
		return s
	}
	if e.otherNetworkLocked(t) {
		return nil // wait for that worker
	}
	return pickLocked(free, func(s *session) bool { return t.ranOn(s) })
}

// anyCanReplicate reports whether a connected worker that has not run t
// could run a replica later. e.mu held.
func (e *Engine) anyCanReplicate(t *task) bool {
	for _, s := range e.sessions {
		if !t.ranOn(s) && !s.standing.Flagged {
			return true
		}
	}
	return false
}
