package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/wasm/worker"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// How results are checked. A result from an untrusted worker that must be
// verified (verify.go: needsCheck) is held on its task until another worker
// on another connection returns the same canonical output (replicate,
// adaptive) or the server computes it (spotcheck, or when no other worker
// could run a replica); only then is it committed. A result that is not
// checked is committed at once and remembered, so that if its worker is
// caught later the result is undone and its task run again. A caught worker
// is disconnected and refused.

// committedRef is a result committed without a check: what it takes to undo
// it.
type committedRef struct {
	job    *job
	phase  Phase
	queue  string // the task's queue
	value  []byte // the task message, to push it again
	msgID  uint64 // the task message's id (its task record key)
	pushed []broker.MessageRef
	record taskRecord
	undone bool // guarded by Engine.mu
}

// executeTask runs a task on the server's own runner: the very code path a
// native worker runs.
var executeTask = worker.Execute

// checker is the engine's verifier: replication, adaptive replication,
// spot checks and known-answer probes, as the job's mode says.
type checker struct{ e *Engine }

// result decides what to do with a worker's result: the result to commit
// now (r itself, or the held result the check settled on), or nothing while
// the task waits for a replica or the server. e.mu must not be held.
func (k checker) result(c *taskCopy, r commitReq) verdict {
	e := k.e
	t, s := c.task, c.session
	j := t.job
	h := resultHash(r.result)
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.state != taskRunning {
		return k.late(t, s, h)
	}
	if s.standing.Flagged {
		// Its worker was caught meanwhile: the result does not count.
		if t.idle() && len(t.held) > 0 {
			t.wantReplicaLocked()
		}
		return verdict{release: t.idle() && len(t.held) == 0}
	}
	if len(t.held) == 0 {
		if !needsCheck(j.verify, s) && !(j.verify == VerifyAdaptive && e.taintedLocked(s)) {
			r.unverified = !s.peer.Trusted && j.verify != VerifyNone && !j.rec.Spec.Stream
			return verdict{commit: &r}
		}
		t.holdLocked(heldResult{req: r, hash: h, s: s})
		if j.verify == VerifySpotcheck {
			e.verified(j, VerifySpotCheck)
			e.startServerCheck(t)
		} else {
			t.wantReplicaLocked()
		}
		return verdict{}
	}
	t.holdLocked(heldResult{req: r, hash: h, s: s})
	return k.settle(t)
}

// late handles a result for a task already done (a backup copy or a
// replica won): a free check of its worker against a checked result. A
// result the server or a trusted worker decided is the yardstick; one that
// rests on untrusted agreement alone is not: a trusted worker that
// contradicts it unmasks the workers that agreed, and an untrusted one
// that contradicts it has the server decide (an audit). e.mu held.
func (k checker) late(t *task, s *session, h [32]byte) verdict {
	e := k.e
	j := t.job
	if t.doneHash == nil || j.verify == VerifyNone {
		return verdict{}
	}
	if *t.doneHash == h {
		if !s.peer.Trusted {
			s.standing.Agreed++
		}
		return verdict{}
	}
	e.verified(j, VerifyDisagreement)
	switch {
	case len(t.doneBackers) == 0 && !s.peer.Trusted:
		return verdict{cheaters: []*session{s}}
	case len(t.doneBackers) == 0:
		return verdict{} // two trusted results differ: nobody is flagged for it
	case s.peer.Trusted:
		backers := t.doneBackers
		t.doneBackers = nil
		return verdict{cheaters: backers}
	}
	e.startAudit(t, map[[32]byte][]*session{*t.doneHash: t.doneBackers, h: {s}}, false)
	return verdict{}
}

// decision is what a task's held results add up to.
type decision int

const (
	undecided decision = iota // wait for another replica
	disputed                  // results differ and nothing outranks them: the server decides
	decided
)

// decide weighs a task's held results. The server's own run and a trusted
// worker's result outrank everything else (authority). Otherwise two
// untrusted results agree only if they come from distinct sessions on
// distinct networks; distinct sessions on one network agree too (weak)
// where no worker of another network could run the replica. Results that
// differ are a dispute, never a vote that sybils could win. e.mu held.
func (k checker) decide(t *task) (d decision, win [32]byte, authority, weak bool) {
	for _, h := range t.held {
		if h.s == nil || h.s.peer.Trusted {
			return decided, h.hash, true, false
		}
	}
	type votes struct {
		sessions map[*session]bool
		networks map[string]bool
	}
	byHash := map[[32]byte]*votes{}
	for _, h := range t.held {
		v := byHash[h.hash]
		if v == nil {
			v = &votes{sessions: map[*session]bool{}, networks: map[string]bool{}}
			byHash[h.hash] = v
		}
		v.sessions[h.s], v.networks[h.s.net] = true, true
	}
	if len(byHash) > 1 {
		return disputed, win, false, false
	}
	for h, v := range byHash {
		switch {
		case len(v.sessions) >= 2 && len(v.networks) >= 2:
			return decided, h, false, false
		case len(v.sessions) >= 2 && !k.e.otherNetworkLocked(t):
			return decided, h, false, true
		}
	}
	return undecided, win, false, false
}

// settle commits the result a task's held results decide, if they do;
// otherwise it asks for one more replica, or the server's own run when they
// disagree. e.mu held.
func (k checker) settle(t *task) verdict {
	e := k.e
	j := t.job
	d, win, authority, weak := k.decide(t)
	switch {
	case d == undecided && len(t.held) < maxHeld:
		t.wantReplicaLocked()
		return verdict{}
	case d == undecided:
		t.settleLocked() // workers that never agree: start the task afresh
		return verdict{release: t.idle()}
	case d == disputed:
		e.verified(j, VerifyDisagreement)
		if !t.serverCheck {
			e.verified(j, VerifySpotCheck)
			e.startServerCheck(t)
		}
		return verdict{}
	}
	var v verdict
	var winner *heldResult
	var backers []*session
	for i := range t.held {
		hr := &t.held[i]
		switch {
		case hr.hash != win:
			e.verified(j, VerifyDisagreement)
			if hr.s != nil && !hr.s.peer.Trusted {
				v.cheaters = append(v.cheaters, hr.s)
			}
		case hr.s != nil:
			if !hr.s.peer.Trusted {
				hr.s.standing.Agreed++
				if t.serverCheck {
					hr.s.standing.SpotChecked++
				}
				backers = append(backers, hr.s)
			}
			if winner == nil || winner.s == nil {
				winner = hr
			}
		case winner == nil:
			winner = hr
		}
	}
	if weak {
		e.verified(j, VerifySameNetwork)
	}
	if authority && len(t.input) <= maxProbeInput {
		// Only what the server or a trusted worker decided is a known
		// answer: one that colluders agreed on would flag honest workers.
		j.known = append(j.known, knownAnswer{task: t, hash: win})
		if len(j.known) > knownPerJob {
			j.known = j.known[1:]
		}
	}
	req := winner.req
	if !authority {
		// Untrusted agreement alone: if any of its workers is caught later,
		// the result is undone; adaptive has the server audit a sample.
		req.backers = backers
		if j.verify == VerifyAdaptive && rand.Float64() < auditRate {
			e.startAudit(t, map[[32]byte][]*session{win: backers}, true)
		}
	}
	t.settleLocked()
	v.commit = &req
	return v
}

// startServerCheck runs a held task on the server itself; the outcome comes
// back to the commit loop as a reqServerCheck. Runs wait for one of
// Config.ServerChecks places. e.mu held.
func (e *Engine) startServerCheck(t *task) {
	if t.serverCheck {
		return
	}
	t.serverCheck = true
	wt := taskMessage(t, 0)
	e.checks.Add(1)
	go func() {
		defer e.checks.Done()
		res, err := e.serverRun(t, &wt, true)
		e.submitReq(commitReq{kind: reqServerCheck, copies: []*taskCopy{{task: t}}, result: &res, message: errString(err), worker: "server"})
	}()
}

// errBusy is a server run given up because every place was taken.
var errBusy = errors.New("every server check place is taken")

// serverRun runs one task on the server's own runner, in one of
// Config.ServerChecks places: waiting for one if wait, else giving up at
// once when none is free.
func (e *Engine) serverRun(t *task, wt *wp.Task, wait bool) (wp.Result, error) {
	if wait {
		select {
		case e.serverRuns <- struct{}{}:
		case <-e.ctx.Done():
			return wp.Result{}, e.ctx.Err()
		}
	} else {
		select {
		case e.serverRuns <- struct{}{}:
		default:
			return wp.Result{}, errBusy
		}
	}
	defer func() { <-e.serverRuns }()
	ctx, cancel := context.WithTimeout(e.ctx, t.job.timeout)
	defer cancel()
	var res wp.Result
	err := e.mods.ensureCompiled(ctx, wt.Module)
	if err == nil {
		res, err = executeTask(ctx, e.runner, wt)
	}
	return res, err
}

// startAudit has the server re-run a task whose result was decided (or
// disputed) by untrusted workers alone, when a place is free: every worker
// whose claimed hash differs from the server's is caught (reqAudit). wait
// false skips the audit when every place is taken (a sample may be
// smaller; a dispute waits). e.mu held.
func (e *Engine) startAudit(t *task, claims map[[32]byte][]*session, sample bool) {
	if sample {
		e.verified(t.job, VerifyAudit)
	} else {
		e.verified(t.job, VerifySpotCheck)
	}
	wt := taskMessage(t, 0)
	e.checks.Add(1)
	go func() {
		defer e.checks.Done()
		res, err := e.serverRun(t, &wt, !sample)
		if err != nil {
			if !errors.Is(err, errBusy) && e.ctx.Err() == nil {
				e.log.Warn("audit of an agreed result failed to run", "task", t.name(), "err", err)
			}
			return
		}
		h := resultHash(&res)
		var caught []*session
		for claim, ss := range claims {
			if claim != h {
				caught = append(caught, ss...)
			}
		}
		if len(caught) > 0 {
			e.submitReq(commitReq{kind: reqAudit, copies: []*taskCopy{{task: t}}, backers: caught,
				message: "the server's own run of " + t.name() + " contradicts the result it agreed on"})
		}
	}()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// serverResult folds the server's own result into a task's held results,
// or settles a failure an untrusted worker reported (failure.go).
func (k checker) serverResult(r commitReq) verdict {
	e := k.e
	t := r.copies[0].task
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.state != taskRunning {
		return verdict{}
	}
	if t.failCheck {
		return e.failureChecked(t, r)
	}
	if len(t.held) == 0 {
		return verdict{}
	}
	if r.message != "" {
		if d, _, _, _ := k.decide(t); d == disputed {
			// Workers disagree and the server cannot say who is right:
			// the task fails this attempt and runs afresh.
			t.settleLocked()
			return verdict{fail: &commitReq{kind: reqFailure, copies: r.copies,
				message: "workers disagreed and the server's own run failed: " + r.message}}
		}
		// The server could not run it: accept the worker's result unchecked.
		e.log.Warn("server check failed; keeping the worker's result", "task", t.name(), "err", r.message)
		first := t.held[0].req
		first.unverified = true
		t.settleLocked()
		return verdict{commit: &first}
	}
	r.kind = reqResult
	t.holdLocked(heldResult{req: r, hash: resultHash(r.result)})
	return k.settle(t)
}

// probe compares a probe's result with the known answer and reports
// whether it matched; the caller flags the worker if not, after the
// batch's results are committed (so that none of them escapes the re-run).
func (k checker) probe(c *taskCopy, r commitReq) bool {
	e := k.e
	ok := resultHash(r.result) == c.probe.hash
	e.mu.Lock()
	defer e.mu.Unlock()
	if ok {
		c.session.standing.Agreed++
	} else {
		e.verified(c.task.job, VerifyDisagreement)
	}
	return ok
}

// flag marks a worker caught returning a wrong result: it is disconnected
// and refused from then on, and every result it had committed unchecked is
// undone and its task run again.
func (e *Engine) flag(ctx context.Context, s *session, why string, touched map[*job]bool) {
	e.mu.Lock()
	if s.standing.Flagged || s.peer.Trusted {
		e.mu.Unlock()
		return
	}
	s.standing.Flagged = true
	e.cfg.Observer.Verified(VerifyBan)
	s.standing.Disagreed++
	e.banned[s.banKey()] = true
	e.caughtAt[hostOf(s.peer.RemoteAddr)]++
	e.tainted[s.net]++
	refs := s.unverified
	s.unverified = nil
	info := s.infoLocked()
	e.flagged = append(e.flagged, info)
	e.mu.Unlock()
	e.recordBan(ctx, s.banKey(), info)
	e.recordCatch(ctx, hostOf(s.peer.RemoteAddr), s.banKey(), s.net)
	e.log.Warn("worker flagged: its result disagreed with verification", "worker", s.id, "remote", s.peer.RemoteAddr,
		"name", s.hello.Name, "why", why, "unverified_results", len(refs))
	go func() {
		sendError(ctx, s.t, fmt.Errorf("%w: %s; this worker is refused", wp.ErrInvalid, why))
		s.close("results failed verification")
	}()
	for _, ref := range refs {
		if err := e.rerun(ctx, ref, touched); err != nil {
			e.log.Error("undo a result of a flagged worker", "job", ref.job.rec.ID, "err", err)
		}
	}
}

// rerun undoes one committed result and puts its task back in its queue.
// Undoing a map result of a job already reducing takes the job back to
// its map phase: its reduce work so far is discarded.
func (e *Engine) rerun(ctx context.Context, ref *committedRef, touched map[*job]bool) error {
	j := ref.job
	e.mu.Lock()
	undone := ref.undone
	ref.undone = true // a result several caught workers agreed on is undone once
	e.mu.Unlock()
	if undone {
		return nil
	}
	if st := e.state(j); st.Finished() {
		return nil // too late: the job's output stands as it was
	}
	if ref.phase == PhaseMap && e.state(j) == StateReducing {
		if err := e.backToMap(ctx, j); err != nil {
			return err
		}
	}
	g := broker.CommitGroup{
		Deletes:      ref.pushed,
		RecordDelete: []string{taskKey(j.rec.ID, ref.phase, ref.msgID)},
		Pushes:       []broker.QueuePush{{Queue: ref.queue, Messages: []broker.NewMessage{{Value: ref.value}}}},
	}
	if _, err := e.commitOne(ctx, g); err != nil {
		return err
	}
	e.mu.Lock()
	j.done[ref.phase]--
	for k, v := range ref.record.Counters {
		j.counters[k] -= v
	}
	if ref.phase == PhaseReduce {
		j.bytesOut -= ref.record.BytesOut
		j.records -= ref.record.Records
	}
	e.verified(j, VerifyRerun)
	e.mu.Unlock()
	touched[j] = true
	e.kick()
	return nil
}

// backToMap returns a reducing job to its map phase: running reduce copies
// are cancelled and the reduce tasks, their results and the output dropped.
func (e *Engine) backToMap(ctx context.Context, j *job) error {
	e.mu.Lock()
	cancels := e.dropRunningLocked(j)
	rec := j.rec
	rec.State, rec.MapDone = StateMapping, nil
	j.setState(rec)
	j.done[PhaseReduce], j.bytesOut, j.records = 0, 0, 0
	e.mu.Unlock()
	for _, c := range cancels {
		c.session.cancelTask(c.id)
	}
	for _, q := range []string{reduceQueue(j.rec.ID), outQueue(j.rec.ID)} {
		if err := e.q.Purge(ctx, q); err != nil {
			return err
		}
	}
	if _, err := e.q.RecordDeletePrefix(ctx, taskKeyPrefix(j.rec.ID)+string(PhaseReduce)+"/"); err != nil {
		return err
	}
	e.log.Warn("job back to its map phase: a map result is being re-run", "job", j.rec.ID)
	return e.putRecords(ctx, rec.record())
}
