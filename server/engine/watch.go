package engine

import (
	"context"
	"time"

	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// watchLoop drops workers that missed three heartbeats, times out tasks
// that ran past their job's task_timeout, and wakes the dispatcher when a
// task has run long enough to deserve a backup copy.
func (e *Engine) watchLoop(ctx context.Context) { every(ctx, 250*time.Millisecond, e.watch) }

func (e *Engine) watch(now time.Time) {
	silent := now.Add(-3 * e.cfg.HeartbeatInterval).UnixNano()
	var drop []*session
	var late []*taskCopy
	e.mu.Lock()
	for _, s := range e.sessions {
		if s.lastSeen.Load() < silent {
			drop = append(drop, s)
		}
		for _, c := range s.copies {
			if now.Sub(c.sent) > c.task.job.timeout {
				late = append(late, c)
			}
		}
	}
	slow := e.anySlowLocked(now)
	e.mu.Unlock()
	if slow {
		e.kick() // a task may take a backup copy now (speculate)
	}
	for _, s := range drop {
		e.log.Warn("worker missed its heartbeats", "worker", s.id)
		s.close("missed heartbeats")
	}
	for _, c := range late {
		s := c.session
		if tc, err := s.take(c.id); err == nil && tc != nil {
			s.send(encodeCancel(c.id))
			e.submitReq(commitReq{kind: reqFailure, copies: []*taskCopy{tc}, timedOut: true, failKind: wp.FailureTimeout,
				message: "timed out after " + c.task.job.timeout.String() + " on worker " + s.id})
		}
	}
}
