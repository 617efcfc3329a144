package redisstore

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Lease hints. Before a lease, the queue's due score must be at or before
// the lease's deadline (so that the reaper visits it if the lease lapses)
// and the queue must be in the owner's queue set (so that its leases come
// back if the owner dies). Writing both before every lease doubled the
// calls a lease makes; a process that leases from a queue again and again
// (an engine's task queues) writes them once and then only when they may
// have been undone:
//
//   - A due score is raised only by the reaper, which counts each visit of
//     a queue in the queue's due generation, on both sides of its write
//     (reap.lua, nextdue.lua); every lease reply carries the generation.
//     A process that wrote the hint between two leases that saw one
//     generation knows that no reaper raised the score after its hint:
//     leases with later deadlines need none while the generation holds.
//     When a lease sees it changed, the hint is written again at once.
//   - An owner's queue set is deleted only once the owner counts as gone
//     and its leases were recovered: a queue hinted while the owner's
//     heartbeat holds needs no hint again until that heartbeat would
//     lapse, or a heartbeat finds the set gone.
//
// Either kind is trusted for hintTTL at most, as queue hints are.

// leaseHints is what one Store knows of the hints its leases wrote.
type leaseHints struct {
	mu    sync.Mutex
	due   map[string]dueHint
	alive map[string]time.Time // owner → until its heartbeat holds, less ownerMargin
	owned map[string]time.Time // owner NUL queue → when hinted, while alive
}

// dueHint is one queue's due hint as this process wrote it.
type dueHint struct {
	at   int64     // the deadline hinted, ns
	gen  string    // the due generation the last lease saw
	sure time.Time // when the generation was seen unchanged across the hint (zero: not yet)
}

// ownerMargin is how long before its heartbeat lapses an owner stops
// trusting its queue hints: other servers' clocks may run ahead.
const ownerMargin = 2 * time.Second

// leasePlan is what a lease skips, and what it saw before.
type leasePlan struct {
	skipDue, skipOwner bool
	gen                string // the generation the cache held
}

// plan says which hints a lease of queue by owner to deadline must write.
func (c *leaseHints) plan(queue, owner string, deadline int64, now time.Time) leasePlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.due[queue]
	p := leasePlan{gen: d.gen}
	p.skipDue = !d.sure.IsZero() && now.Sub(d.sure) < hintTTL && deadline >= d.at
	if until, ok := c.alive[owner]; ok && now.Before(until) {
		at, ok := c.owned[owner+"\x00"+queue]
		p.skipOwner = ok && now.Sub(at) < hintTTL
	}
	return p
}

// hinted records that the hints p did not skip were written.
func (c *leaseHints) hinted(queue, owner string, p leasePlan, now time.Time) {
	if p.skipOwner {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.alive[owner]; ok && now.Before(until) {
		if c.owned == nil || len(c.owned) >= hintCacheMax {
			c.owned = map[string]time.Time{}
		}
		c.owned[owner+"\x00"+queue] = now
	}
}

// leased takes the due generation a lease planned as p saw; it reports
// whether the due hint must be written now: the lease skipped it, and a
// reaper may have raised the score since it was last written.
func (c *leaseHints) leased(queue string, deadline int64, gen string, p leasePlan, now time.Time) (late bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == "" { // no such queue: nothing was leased
		delete(c.due, queue)
		return false
	}
	if p.skipDue {
		if gen == p.gen {
			return false
		}
		c.put(queue, dueHint{at: deadline, gen: gen})
		return true
	}
	d := dueHint{at: deadline, gen: gen}
	if p.gen == gen {
		d.sure = now // the hint was written between two leases that saw gen
	}
	c.put(queue, d)
	return false
}

// unsure forgets what a queue's due hint was: one failed to be written.
func (c *leaseHints) unsure(queue string) {
	c.mu.Lock()
	delete(c.due, queue)
	c.mu.Unlock()
}

// forgetOwner drops an owner's queue hints. c.mu held.
func (c *leaseHints) forgetOwner(owner string) {
	for k := range c.owned {
		if strings.HasPrefix(k, owner+"\x00") {
			delete(c.owned, k)
		}
	}
}

func (c *leaseHints) put(queue string, d dueHint) {
	if c.due == nil || len(c.due) >= hintCacheMax {
		c.due = map[string]dueHint{}
	}
	c.due[queue] = d
}

// heartbeat records an owner's heartbeat: alive until until (zero: it
// stopped), as the store now says; kept says whether its queue set was
// still there (another process deletes it once it recovered the owner's
// leases as gone).
func (c *leaseHints) heartbeat(owner string, until time.Time, kept bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alive == nil {
		c.alive = map[string]time.Time{}
	}
	if !kept {
		c.forgetOwner(owner) // recovered as gone: its queue set is no more
	}
	if until.IsZero() {
		delete(c.alive, owner)
		return
	}
	c.alive[owner] = until.Add(-ownerMargin)
}

// leaseHintsFirst writes the hints a lease needs before it (those the
// cache cannot vouch for) and returns the plan to finish with.
func (s *Store) leaseHintsFirst(ctx context.Context, queue, owner string, deadline int64, now time.Time) (leasePlan, error) {
	plan := s.leases.plan(queue, owner, deadline, now)
	var h hints
	if !plan.skipDue {
		h.due(queue, deadline)
	}
	if !plan.skipOwner {
		h.lease(owner, queue)
	}
	if err := s.writeHints(ctx, &h); err != nil {
		s.leases.unsure(queue)
		return plan, err
	}
	s.leases.hinted(queue, owner, plan, now)
	return plan, nil
}

// leaseHintsAfter takes what a lease saw of its queue's due generation,
// and writes the due hint at once if a reaper may have raised the score
// since this process last wrote it. The leases are taken by then: a
// failure is logged, and the queue's next lease writes the hint first.
func (s *Store) leaseHintsAfter(ctx context.Context, queue string, deadline int64, gen string, plan leasePlan, now time.Time) {
	if !s.leases.leased(queue, deadline, gen, plan, now) {
		return
	}
	var h hints
	h.due(queue, deadline)
	if err := s.writeHints(ctx, &h); err != nil {
		s.leases.unsure(queue)
		s.log.Warn("lease: due hint after the lease", "queue", queue, "err", err)
	}
}
