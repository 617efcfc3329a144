package engine

import (
	"context"
	"fmt"

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
}

// executeTask runs a task on the server's own runner: the very code path a
// native worker runs.
var executeTask = worker.Execute

// checker is the engine's verifier: replication, adaptive replication,
// spot checks and known-answer probes, as the job's mode says.
type checker struct{ e *Engine }

// result decides what to do with a worker's result: the result to commit
// now (r itself, or the held result a majority agreed on), or nothing while
// the task waits for agreement. e.mu must not be held.
func (k checker) result(c *taskCopy, r commitReq) verdict {
	e := k.e
	t, s := c.task, c.session
	j := t.job
	h := resultHash(r.result)
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.state != taskRunning {
		// Done meanwhile (a backup copy or a replica won): a late result is
		// still a free check of its worker, unless the job trusts everyone.
		if t.doneHash != nil && !s.peer.Trusted && j.verify != VerifyNone {
			if *t.doneHash == h {
				s.standing.Agreed++
			} else {
				e.verified(j, VerifyDisagreement)
				return verdict{cheaters: []*session{s}}
			}
		}
		return verdict{}
	}
	if s.standing.Flagged {
		// Its worker was caught meanwhile: the result does not count.
		if t.idle() && len(t.held) > 0 {
			t.wantReplicaLocked()
		}
		return verdict{release: t.idle() && len(t.held) == 0}
	}
	if len(t.held) == 0 {
		if !needsCheck(j.verify, s) {
			r.unverified = !s.peer.Trusted && j.verify != VerifyNone && !j.rec.Spec.Stream
			return verdict{commit: &r}
		}
		t.holdLocked(heldResult{req: r, hash: h, s: s})
		if j.verify == VerifySpotcheck {
			e.startServerCheck(t)
		} else {
			t.wantReplicaLocked()
		}
		return verdict{}
	}
	t.holdLocked(heldResult{req: r, hash: h, s: s})
	return k.settle(t)
}

// settle commits the majority of a task's held results, if there is one,
// and otherwise asks for one more replica. e.mu held.
func (k checker) settle(t *task) verdict {
	e := k.e
	j := t.job
	win, ok := majority(t.held)
	if !ok {
		e.verified(j, VerifyDisagreement)
		if len(t.held) >= maxHeld {
			t.settleLocked()
			return verdict{release: t.idle()}
		}
		t.wantReplicaLocked() // another worker breaks the tie
		return verdict{}
	}
	var v verdict
	var winner *heldResult
	for i := range t.held {
		hr := &t.held[i]
		switch {
		case hr.hash != win:
			e.verified(j, VerifyDisagreement)
			if hr.s != nil {
				v.cheaters = append(v.cheaters, hr.s)
			}
		case hr.s != nil:
			hr.s.standing.Agreed++
			if t.serverCheck {
				hr.s.standing.SpotChecked++
			}
			if winner == nil || winner.s == nil {
				winner = hr
			}
		case winner == nil:
			winner = hr
		}
	}
	if len(t.input) <= maxProbeInput {
		j.known = append(j.known, knownAnswer{task: t, hash: win})
		if len(j.known) > knownPerJob {
			j.known = j.known[1:]
		}
	}
	req := winner.req
	t.settleLocked()
	v.commit = &req
	return v
}

// startServerCheck runs a held task on the server itself; the outcome comes
// back to the commit loop as a reqServerCheck. e.mu held.
func (e *Engine) startServerCheck(t *task) {
	if t.serverCheck {
		return
	}
	t.serverCheck = true
	e.verified(t.job, VerifySpotCheck)
	wt := taskMessage(t, 0)
	e.checks.Add(1)
	go func() {
		defer e.checks.Done()
		ctx, cancel := context.WithTimeout(e.ctx, t.job.timeout)
		defer cancel()
		var res wp.Result
		err := e.mods.ensureCompiled(ctx, wt.Module)
		if err == nil {
			res, err = executeTask(ctx, e.runner, &wt)
		}
		e.submitReq(commitReq{kind: reqServerCheck, copies: []*taskCopy{{task: t}}, result: &res, message: errString(err), worker: "server"})
	}()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// serverResult folds the server's own result into a task's held results.
func (k checker) serverResult(r commitReq) verdict {
	e := k.e
	t := r.copies[0].task
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.state != taskRunning || len(t.held) == 0 {
		return verdict{}
	}
	if r.message != "" {
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
	if s.standing.Flagged {
		e.mu.Unlock()
		return
	}
	s.standing.Flagged = true
	e.cfg.Observer.Verified(VerifyBan)
	s.standing.Disagreed++
	e.banned[s.banKey()] = true
	refs := s.unverified
	s.unverified = nil
	info := s.infoLocked()
	e.flagged = append(e.flagged, info)
	e.mu.Unlock()
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
func (e *Engine) rerun(ctx context.Context, ref committedRef, touched map[*job]bool) error {
	j := ref.job
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
