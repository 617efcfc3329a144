package broker

import (
	"errors"
	"sort"
)

// maxLiveBatch bounds the messages one dispatcher round leases.
const maxLiveBatch = 64

// dispatch feeds a queue's live consumers until it has none left or the
// broker closes. Every message it hands out is leased first, so a consumer
// that fails or drops returns it to the queue.
func (b *Broker) dispatch(q *liveQueue) {
	defer b.wg.Done()
	for {
		cons := b.snapshot(q)
		if cons == nil {
			return
		}
		if !b.dispatchRound(q, cons) {
			select {
			case <-q.wakeC:
			case <-b.ctx.Done():
				b.mu.Lock()
				q.running = false
				b.mu.Unlock()
				return
			}
		}
	}
}

// snapshot returns the queue's consumers in subscription order, or nil
// (and marks the dispatcher stopped) when it has none or the broker closed.
func (b *Broker) snapshot(q *liveQueue) []*Consumer {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(q.consumers) == 0 || b.closed {
		q.running = false
		return nil
	}
	cons := q.consumerList()
	sort.Slice(cons, func(i, j int) bool { return cons[i].id < cons[j].id })
	return cons
}

// dispatchRound leases what the consumers have credit for and hands it out.
// It reports whether it delivered anything (so another round may follow at
// once).
func (b *Broker) dispatchRound(q *liveQueue, cons []*Consumer) bool {
	status, policy, err := b.queueState(b.ctx, q.name)
	if err != nil || status == StatusPaused {
		return false
	}
	n := credit(cons, policy)
	if n <= 0 {
		return false
	}
	leases, err := b.store.QueueLease(b.ctx, QueueLeaseParams{
		Queue: q.name, N: n, Visibility: b.cfg.LiveVisibility, Now: b.now(), Owner: b.cfg.Owner,
	})
	if err != nil {
		if !errors.Is(err, ErrClosed) && b.ctx.Err() == nil {
			b.log.Error("lease for live consumers", "queue", q.name, "err", err)
		}
		return false
	}
	b.counters.LiveDeliveries.Add(int64(len(leases)))
	// Hand out to the consumers there are now: some may have come while
	// the lease was taken, and broadcast owes each of them every message.
	b.mu.Lock()
	cons = q.consumerList()
	b.mu.Unlock()
	sort.Slice(cons, func(i, j int) bool { return cons[i].id < cons[j].id })
	if len(cons) == 0 { // they all left meanwhile
		for _, l := range leases {
			sl := &sharedLease{lease: l}
			sl.pending.Store(1)
			b.settle(q.name, sl, false)
		}
		return false
	}
	for _, l := range leases {
		s := &sharedLease{lease: l}
		if policy == PolicyBroadcast {
			b.broadcast(q, s, cons)
		} else {
			b.roundRobin(q, s, cons)
		}
	}
	return len(leases) > 0
}

// credit is how many messages the consumers can take now: the sum of their
// credits for round-robin; for broadcast, the least credit of the consumers
// that are not poppers, or the poppers' sum when there are only poppers.
func credit(cons []*Consumer, p Policy) int {
	total, least := int64(0), int64(-1)
	for _, c := range cons {
		cr := max(c.credit.Load(), 0)
		total += cr
		if !c.pop && (least < 0 || cr < least) {
			least = cr
		}
	}
	n := total
	if p == PolicyBroadcast && least >= 0 {
		n = least
	}
	return int(min(n, maxLiveBatch))
}

func (b *Broker) roundRobin(q *liveQueue, s *sharedLease, cons []*Consumer) {
	s.pending.Store(1)
	for i := range cons {
		c := cons[(int(q.rr)+i)%len(cons)]
		if c.credit.Load() > 0 && c.offer(s) {
			q.rr = uint64((int(q.rr) + i + 1) % len(cons))
			return
		}
	}
	b.settle(q.name, s, false)
}

// broadcast hands a message to every consumer but the poppers, and to one
// popper with credit, in turn.
func (b *Broker) broadcast(q *liveQueue, s *sharedLease, cons []*Consumer) {
	var listeners, poppers []*Consumer
	for _, c := range cons {
		if c.pop {
			poppers = append(poppers, c)
		} else {
			listeners = append(listeners, c)
		}
	}
	if len(listeners) == 0 {
		b.roundRobin(q, s, poppers)
		return
	}
	var popper *Consumer
	for i := range poppers {
		if c := poppers[(int(q.rr)+i)%len(poppers)]; c.credit.Load() > 0 {
			popper, q.rr = c, uint64((int(q.rr)+i+1)%len(poppers))
			break
		}
	}
	n := len(listeners)
	if popper != nil {
		n++
	}
	s.pending.Store(int32(n))
	for _, c := range listeners {
		if !c.offer(s) {
			c.drop(ErrConsumerSlow)
			b.settle(q.name, s, false)
		}
	}
	if popper != nil && !popper.offer(s) {
		b.settle(q.name, s, false)
	}
}
