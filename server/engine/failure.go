package engine

import (
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// Failures from untrusted workers. A worker anyone can connect could say
// any task fails: counted as they come, its failures would exhaust a
// task's attempts and fail a job that honest workers would finish. So a
// task that an untrusted worker failed (with nothing else running or held)
// is run by the server itself before the failure counts: if the server's
// run fails too, the failure is the module's and the task fails for good
// at once (a module that really traps fails its job within seconds); if it
// succeeds, its result is committed and the worker's failure was
// contradicted. A worker whose failures (errors or timeouts) the server
// contradicts throttleAfter times is throttled to one task at a time, and
// at refuseAfter times refused, as a cheat is.

// Thresholds of contradicted failures.
const (
	throttleAfter = 3
	refuseAfter   = 6
)

// failureNote is one failure an untrusted worker reported.
type failureNote struct {
	s       *session
	kind    wp.FailureKind
	message string
}

// checkFailureLocked decides whether a failure of copy c (already dropped)
// goes to the server for confirmation, and starts it: a non-final failure
// from an untrusted worker of a task with nothing else running or held.
// e.mu held.
func (e *Engine) checkFailureLocked(c *taskCopy, msg string, kind wp.FailureKind, final bool) bool {
	t, s := c.task, c.session
	if s == nil || s.peer.Trusted || final || t.state != taskRunning || !t.idle() || len(t.held) > 0 {
		return false
	}
	t.failedBy = append(t.failedBy, failureNote{s: s, kind: kind, message: msg})
	if !t.failCheck && !t.serverCheck {
		t.failCheck = true
		e.verified(t.job, VerifyFailureCheck)
		e.startServerCheck(t)
	}
	return true
}

// failureChecked settles a task whose failure the server re-ran: the
// server's failure fails the task for good; its result is committed, and
// every worker that failed the task is counted as contradicted. e.mu held.
func (e *Engine) failureChecked(t *task, r commitReq) verdict {
	notes := t.failedBy
	t.failCheck, t.serverCheck, t.failedBy = false, false, nil
	if r.message != "" {
		// The worker's words first (a browser says what it saw), then
		// the server's.
		msg := r.message
		if len(notes) > 0 {
			msg = notes[0].message + "; the server's own run failed too: " + r.message
		}
		return verdict{fail: &commitReq{kind: reqFailure, copies: r.copies, final: true, message: msg}}
	}
	var v verdict
	for _, n := range notes {
		if n.kind != wp.FailureJob && n.kind != wp.FailureTimeout {
			continue // the worker's environment (a module it cannot compile): no lie
		}
		s := n.s
		s.contradicted++
		if s.contradicted >= throttleAfter && !s.throttled {
			s.throttled = true
			e.log.Warn("worker throttled: the server's runs contradicted its failures", "worker", s.id, "contradicted", s.contradicted)
		}
		if s.contradicted == refuseAfter {
			v.refuse = append(v.refuse, s)
		}
	}
	r.kind = reqResult
	v.commit = &r
	return v
}
