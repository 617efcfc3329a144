package engine

import (
	"strings"

	"github.com/tabreduce/tabreduce/server/broker"
)

// onEvent wakes the dispatcher when tasks may be waiting: a push or a
// return to a job's map or reduce queue, a message on a streaming job's
// input queue, or a queue resumed. Nothing polls.
func (e *Engine) onEvent(ev broker.Event) {
	if e.shared() && strings.HasPrefix(ev.Queue, "job/") {
		if id, rest, ok := strings.Cut(ev.Queue[len("job/"):], "/"); ok && e.worthALook(id, rest, ev.Kind) {
			e.markDirty(id) // another server may have moved the job on
		}
	}
	switch ev.Kind {
	case broker.EventResync:
		e.kick()
	case broker.EventPush, broker.EventState:
		if isTaskQueue(ev.Queue) || e.isStreamInput(ev.Queue) {
			e.kick()
		}
	}
}

// isTaskQueue reports whether q is a job's map or reduce queue.
func isTaskQueue(q string) bool {
	return strings.HasPrefix(q, "job/") && (strings.HasSuffix(q, "/map") || strings.HasSuffix(q, "/reduce"))
}

func (e *Engine) isStreamInput(q string) bool {
	e.streamMu.Lock()
	defer e.streamMu.Unlock()
	return e.streams[q] > 0
}

// trackStream counts a running streaming job in (+1) or out (-1).
func (e *Engine) trackStream(j *job, d int) {
	if !j.rec.Spec.Stream || (d > 0 && j.rec.State.Finished()) {
		return
	}
	e.streamMu.Lock()
	defer e.streamMu.Unlock()
	q := j.rec.Spec.InputQueue
	if e.streams[q] += d; e.streams[q] <= 0 {
		delete(e.streams, q)
	}
}
