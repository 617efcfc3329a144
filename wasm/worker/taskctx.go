package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// taskContext is the context a task of a session runs under: the slot's
// values (the session's and the slot's progress sink), the task's deadline
// once a slot starts it, and done when the server cancels the task, its
// timeout passes or the session ends.
//
// It lives inside the task's taskRun and allocates nothing of its own but
// its done channel, and that only when a caller asks for it (a module call
// with termination checks, a wait for a module's download). A
// context.WithCancelCause child of the session with a context.WithTimeout
// under it cost a task six to eight allocations (a timer, a children map
// and a done channel each, and the session's children map taking every
// task in and out under its lock). Instead the slot's one timer (slotTimer)
// stands for the deadline, and the session cancels its open tasks itself
// when it ends (session.run).
//
// context.Cause does not see why it ended (it finds the session's cause);
// ask cause.
type taskContext struct {
	parent   context.Context // values only; its end reaches us through session.run
	deadline time.Time       // set by the slot before the task runs; zero: none

	mu   sync.Mutex
	done chan struct{}
	err  error
	why  error
}

// closedDone is the done channel of a context that ended before anyone
// asked for one.
var closedDone = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (c *taskContext) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

func (c *taskContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *taskContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *taskContext) Value(key any) any { return c.parent.Value(key) }

// end ends the context with err (context.Canceled or
// context.DeadlineExceeded) for the reason why. Only the first call counts.
func (c *taskContext) end(err, why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err, c.why = err, why
	if c.done == nil {
		c.done = closedDone
	} else {
		close(c.done)
	}
}

// cause is why the context ended (errCancelled, context.DeadlineExceeded,
// the session's cause), or nil while it runs.
func (c *taskContext) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}

// slotTimer is one slot's timer for the deadlines of the tasks it runs: armed
// for each task with a timeout, it ends the task's context once its deadline
// has passed. A firing that comes late, when the slot has moved on to a task
// whose deadline has not passed, does nothing.
type slotTimer struct {
	t       *time.Timer
	running atomic.Pointer[taskContext]
}

// start sets c's deadline timeout after now and arms the timer for it; a
// timeout of 0 is none.
func (st *slotTimer) start(c *taskContext, now time.Time, timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	c.deadline = now.Add(timeout)
	st.running.Store(c)
	if st.t == nil {
		st.t = time.AfterFunc(timeout, st.fire)
	} else {
		st.t.Reset(timeout)
	}
}

// stop disarms the timer once the task has returned.
func (st *slotTimer) stop() {
	st.running.Store(nil)
	if st.t != nil {
		st.t.Stop()
	}
}

func (st *slotTimer) fire() {
	if c := st.running.Load(); c != nil && !time.Now().Before(c.deadline) {
		c.end(context.DeadlineExceeded, context.DeadlineExceeded)
	}
}
