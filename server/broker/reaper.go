package broker

import (
	"context"
)

// reapLoop returns expired leases to their queues every ReapInterval until
// the broker closes.
func (b *Broker) reapLoop() {
	b.every(b.cfg.ReapInterval, "reap leases", func(ctx context.Context) error {
		_, err := b.ReapNow(ctx)
		return err
	})
}

// ReapNow runs the reaper once, to completion, and returns what it did; the
// live consumers of queues that got messages back wake on the store's
// events.
func (b *Broker) ReapNow(ctx context.Context) (ReapResult, error) {
	total := ReapResult{Requeued: map[string]int{}, DeadLettered: map[string]int{}}
	for {
		res, err := b.store.Reap(ctx, ReapParams{Now: b.now(), MaxAttempts: b.cfg.MaxAttempts, Limit: 1000})
		if err != nil {
			return total, err
		}
		for q, n := range res.Requeued {
			total.Requeued[q] += n
		}
		for q, n := range res.DeadLettered {
			total.DeadLettered[q] += n
			b.log.Warn("dead-lettered expired leases", "queue", q, "messages", n)
		}
		total.Expired += res.Expired
		b.counters.Expired.Add(int64(res.Expired))
		if !res.More {
			return total, nil
		}
	}
}
