package broker

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The store announces every change a consumer may care about (Store.Watch),
// whichever process made it; onEvent is the broker's one reaction to them:
// live consumers wake on pushes from any source, cached queue state is
// dropped when it changes, and purged queues lose their consumers. The
// broker's watchers (the engine) see the same events after it.

// onEvent handles one store event. It runs on the goroutine that made the
// change (or the store's feed) and never blocks.
func (b *Broker) onEvent(ev Event) {
	switch ev.Kind {
	case EventPush:
		b.wake(ev.Queue)
	case EventState:
		b.forget(ev.Queue)
		b.wake(ev.Queue)
	case EventPurge:
		b.dropQueue(ev.Queue)
	case EventFlush:
		for _, q := range b.liveNames() {
			if !IsInternalQueue(q) {
				b.dropQueue(q)
			}
		}
	case EventResync:
		for _, q := range b.liveNames() {
			b.forget(q)
			b.wake(q)
		}
	}
	b.watchers.Notify(ev)
}

// liveNames returns the queues the broker holds live state for.
func (b *Broker) liveNames() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.queues))
	for q := range b.queues {
		out = append(out, q)
	}
	return out
}

// dropQueue forgets a purged queue and closes its live consumers.
func (b *Broker) dropQueue(queue string) {
	b.mu.Lock()
	lq := b.queues[queue]
	delete(b.queues, queue)
	b.stateGen++
	var consumers []*Consumer
	if lq != nil {
		consumers = lq.consumerList()
		lq.consumers = map[uint64]*Consumer{}
	}
	b.mu.Unlock()
	for _, c := range consumers {
		c.drop(errPurged)
	}
	if lq != nil {
		lq.signal() // let its dispatcher see it has no consumers and end
	}
}

// Watchers is a set of event functions: what the broker's Internal.Watch
// registers, and what a Store implementation may use for its own Watch.
// The zero value is ready.
type Watchers struct {
	mu  sync.RWMutex
	seq uint64
	fns map[uint64]func(Event)
}

// Add registers fn; stop removes it.
func (w *Watchers) Add(fn func(Event)) (stop func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[uint64]func(Event){}
	}
	w.seq++
	id := w.seq
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		delete(w.fns, id)
		w.mu.Unlock()
	}
}

// Notify calls every registered function with each event, in order. The
// functions run outside the set's lock, so one may stop its own watch.
func (w *Watchers) Notify(events ...Event) {
	if len(events) == 0 {
		return
	}
	w.mu.RLock()
	fns := make([]func(Event), 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	w.mu.RUnlock()
	for _, fn := range fns {
		for _, ev := range events {
			fn(ev)
		}
	}
}

// heartbeat tells the store this process is alive.
func (b *Broker) heartbeat(ctx context.Context) error {
	until := b.now().Add(ownerTTL * b.cfg.OwnerInterval)
	return b.store.OwnerHeartbeat(ctx, OwnerParams{Owner: b.cfg.Owner, Until: until})
}

// recover returns the leases of owners that are gone to their queues, to
// completion, and says how many.
func (b *Broker) recover(ctx context.Context) (int, error) {
	total := 0
	for {
		res, err := b.store.LeaseRecover(ctx, LeaseRecoverParams{Now: b.now(), Limit: 1000})
		if err != nil {
			return total, err
		}
		for _, n := range res.Released {
			total += n
		}
		if !res.More {
			return total, nil
		}
	}
}

// ownerLoop keeps this process's heartbeat fresh and recovers the leases of
// processes that stopped sending theirs, every OwnerInterval.
func (b *Broker) ownerLoop() {
	b.every(b.cfg.OwnerInterval, "lease owner upkeep", func(ctx context.Context) error {
		if err := b.heartbeat(ctx); err != nil {
			return err
		}
		n, err := b.recover(ctx)
		if n > 0 {
			b.log.Warn("released leases of a process that is gone", "messages", n)
		}
		return err
	})
}

// every runs fn each interval until the broker closes, logging what fails
// (but not the store closing under it). It ends the goroutine's wg count.
func (b *Broker) every(interval time.Duration, what string, fn func(context.Context) error) {
	defer b.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		if err := fn(b.ctx); err != nil && !errors.Is(err, ErrClosed) && b.ctx.Err() == nil {
			b.log.Error(what, "err", err)
		}
	}
}
