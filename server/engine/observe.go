package engine

import "time"

// Observer is told what the engine does, for metrics (httpapi's engine
// metrics export it to /metrics). The engine calls it from its commit and
// dispatch paths, sometimes with its lock held: an implementation must be
// cheap, must not block and must not call the engine.
type Observer interface {
	// TaskEnded reports a copy of a task leaving its worker. compute is the
	// time the worker says it spent (for OutcomeDone only; otherwise 0) and
	// turnaround the time since the copy was handed out.
	TaskEnded(phase Phase, outcome TaskOutcome, compute, turnaround time.Duration)
	// Verified reports one unit of verification work or one finding.
	Verified(kind VerifyEvent)
}

// TaskOutcome is how a copy of a task ended.
type TaskOutcome string

// Task outcomes.
const (
	OutcomeDone     TaskOutcome = "done"      // its result was committed
	OutcomeFailed   TaskOutcome = "failed"    // the worker reported a failure, or a malformed result
	OutcomeTimedOut TaskOutcome = "timed_out" // it ran past its job's task_timeout
	OutcomeReturned TaskOutcome = "returned"  // its worker left before answering: the task went back
)

// VerifyEvent is a kind of verification work or finding.
type VerifyEvent string

// Verification events.
const (
	VerifyReplica      VerifyEvent = "replica"       // a copy run on a second worker to check a result
	VerifyProbe        VerifyEvent = "probe"         // a known-answer task sent to a new worker
	VerifySpotCheck    VerifyEvent = "spot_check"    // a task the server re-ran itself
	VerifyDisagreement VerifyEvent = "disagreement"  // a result that did not match
	VerifyRerun        VerifyEvent = "rerun"         // a committed result undone, its worker caught
	VerifyBan          VerifyEvent = "ban"           // a worker flagged and refused
	VerifySameNetwork  VerifyEvent = "same_network"  // a result accepted on agreement within one network
	VerifyAudit        VerifyEvent = "audit"         // an agreed result the server re-ran
	VerifyFailureCheck VerifyEvent = "failure_check" // an untrusted worker's failure the server re-ran
)

// noObserver is the Observer of an engine configured without one.
type noObserver struct{}

func (noObserver) TaskEnded(Phase, TaskOutcome, time.Duration, time.Duration) {}
func (noObserver) Verified(VerifyEvent)                                       {}

// verified counts one verification event in the job's counts and tells
// the observer. e.mu held.
func (e *Engine) verified(j *job, kind VerifyEvent) {
	switch kind {
	case VerifyReplica:
		j.counts.Replicas++
	case VerifyProbe:
		j.counts.Probes++
	case VerifySpotCheck:
		j.counts.SpotChecks++
	case VerifyDisagreement:
		j.counts.Mismatches++
	case VerifyRerun:
		j.counts.Reruns++
	case VerifySameNetwork:
		j.counts.SameNetwork++
	case VerifyAudit:
		j.counts.Audits++
	case VerifyFailureCheck:
		j.counts.FailureChecks++
	}
	e.cfg.Observer.Verified(kind)
}
