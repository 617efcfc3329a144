package engine

import (
	"context"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Leasing ahead, when servers share the store. A server's dispatcher leases
// a job's tasks for its own workers only, and without a reserve a lease
// carries what they freed while the last one was under way: each of three
// servers leases about as often as a lone server, for a third of the tasks,
// and a store call costs much the same whatever it carries. So a server
// leases a little more than its workers can take at once and keeps the
// rest, in lease, for its next rounds: about aheadWindow of what its
// workers have been taking lately (nothing before they take any), at most
// maxLeaseBatch. The reserve is leased like any task (the same visibility,
// the same owner), so what a server that dies held comes back through the
// reaper as its running tasks do. A lease held for aheadHold goes back to
// the queue, for the other servers, rather than to a worker here (the
// sharer's round gives back those no round took), and so does all of the
// reserve when the engine stops: a task leaves with nearly all of its
// lease's slack, and tasks that take long, for which the intake says
// little, are not kept from idle workers elsewhere.

// aheadWindow is how much of its workers' recent intake a server leases
// ahead.
const aheadWindow = 100 * time.Millisecond

// aheadSample is the least time over which the intake is measured.
const aheadSample = 100 * time.Millisecond

// aheadHold is how long a lease is held for this server's workers.
const aheadHold = time.Second

// reserve is what a server holds of one job's tasks for its own workers:
// leases of one phase's queue, oldest first. Guarded by Engine.mu.
type reserve struct {
	phase  Phase
	leases []heldLease
}

// heldLease is a leased task no worker has yet, and when it was leased.
type heldLease struct {
	l  broker.Lease
	at time.Time
}

// intake measures the tasks a server's dispatcher hands out a second.
// Guarded by Engine.mu.
type intake struct {
	n     int
	since time.Time
	rate  float64
}

// addLocked counts n tasks handed out at now.
func (in *intake) addLocked(n int, now time.Time) {
	if in.since.IsZero() {
		in.since = now
	}
	in.n += n
	if d := now.Sub(in.since); d >= aheadSample {
		r := float64(in.n) / d.Seconds()
		if d < 2*aheadSample {
			r = (in.rate + r) / 2 // a gap (no work) is not smoothed over
		}
		in.rate, in.n, in.since = r, 0, now
	}
}

// aheadLocked is how many tasks beyond its workers' credit the dispatcher
// keeps leased. e.mu held.
func (e *Engine) aheadLocked() int {
	if !e.shared() {
		return 0
	}
	return min(int(e.intake.rate*aheadWindow.Seconds()), maxLeaseBatch)
}

// takeAheadLocked takes up to n of j's held leases of phase p for workers,
// and returns them with those to give back (too old, or of another phase).
// e.mu held.
func (e *Engine) takeAheadLocked(j *job, p Phase, n int, now time.Time) (take []broker.Lease, back []string) {
	r := &j.ahead
	if r.phase != p {
		back = r.idsLocked()
		r.leases, r.phase = nil, p
	}
	for len(r.leases) > 0 && len(take) < n {
		h := r.leases[0]
		r.leases = r.leases[1:]
		if now.Sub(h.at) >= aheadHold {
			back = append(back, h.l.ID)
			continue
		}
		take = append(take, h.l)
	}
	return take, back
}

// toLeaseLocked is how many tasks of j to lease in a round that still
// wants n after its reserve: n and enough to fill the reserve once it is
// down to half. e.mu held.
func (e *Engine) toLeaseLocked(j *job, n int) int {
	ahead := e.aheadLocked()
	if j.rec.Spec.Stream || j.rec.State.Finished() {
		ahead = 0
	}
	held := len(j.ahead.leases)
	if n <= 0 && held*2 >= ahead {
		return 0
	}
	return min(max(n, 0)+max(ahead-held, 0), maxLeaseBatch)
}

// holdLocked keeps leases no worker took in j's reserve of phase p, unless
// the job ended or nothing is leased ahead; it returns those to give back.
// e.mu held.
func (e *Engine) holdLocked(j *job, p Phase, ls []broker.Lease, at time.Time) (back []string) {
	if len(ls) == 0 {
		return nil
	}
	if j.rec.State.Finished() || j.ahead.phase != p || e.aheadLocked() == 0 || e.closed {
		for _, l := range ls {
			back = append(back, l.ID)
		}
		return back
	}
	for _, l := range ls {
		j.ahead.leases = append(j.ahead.leases, heldLease{l: l, at: at})
	}
	return nil
}

// idsLocked is the lease ids of the reserve. e.mu held.
func (r *reserve) idsLocked() []string {
	ids := make([]string, len(r.leases))
	for i, h := range r.leases {
		ids[i] = h.l.ID
	}
	return ids
}

// returnHeld gives back the leases held for aheadHold (all of them when
// all is set: the engine stops) and those of jobs that ended.
func (e *Engine) returnHeld(ctx context.Context, all bool) {
	now := time.Now()
	type lapsed struct {
		queue string
		ids   []string
	}
	var back []lapsed
	e.mu.Lock()
	for _, j := range e.jobs {
		r := &j.ahead
		old := 0 // the reserve is oldest first
		for old < len(r.leases) && now.Sub(r.leases[old].at) >= aheadHold {
			old++
		}
		if all || j.rec.State.Finished() {
			old = len(r.leases)
		}
		if old == 0 {
			continue
		}
		ids := make([]string, old)
		for i, h := range r.leases[:old] {
			ids[i] = h.l.ID
		}
		r.leases = r.leases[old:]
		back = append(back, lapsed{j.queue(r.phase), ids})
	}
	e.mu.Unlock()
	for _, b := range back {
		e.giveBack(ctx, b.queue, b.ids)
	}
}

// giveBack returns leased tasks no worker got to their queue.
func (e *Engine) giveBack(ctx context.Context, queue string, ids []string) {
	if len(ids) == 0 {
		return
	}
	if _, err := e.q.Release(ctx, queue, ids); err != nil {
		e.log.Error("return unsent tasks", "queue", queue, "err", err)
	}
}

// returnAll gives back every reserve as the engine stops, so the other
// servers need not wait for the leases to lapse.
func (e *Engine) returnAll() {
	if !e.shared() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e.returnHeld(ctx, true)
}
