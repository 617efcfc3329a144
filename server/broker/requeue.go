package broker

import (
	"context"
	"fmt"
	"time"
)

// requeueVisibility is how long Requeue holds the dead letters it moves:
// long enough for one commit, and short, so that a failure leaves them in
// their dead-letter queue soon.
const requeueVisibility = 30 * time.Second

// Requeue moves up to limit messages of a dead-letter queue back to the
// tail of the queue it serves, oldest first, as new messages (attempts
// from zero, no error; what was left of a TTL is kept). Each move is one
// transaction, a lease of the dead letter acked with the push: a message is
// in one queue or the other, never both, and one a consumer holds is not
// moved. It returns how many moved.
func (b *Broker) Requeue(ctx context.Context, deadQueue string, limit int) (int, error) {
	if err := CheckQueueName(deadQueue); err != nil {
		return 0, err
	}
	origin, ok := DeadLetterOf(deadQueue)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a dead-letter queue (its name would end in %q)", ErrInvalid, truncate(deadQueue, 40), deadSuffix)
	}
	if err := CheckQueueName(origin); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("%w: limit %d must be positive", ErrInvalid, limit)
	}
	moved := 0
	for moved < limit {
		ls, err := b.lease(ctx, deadQueue, min(limit-moved, b.cfg.MaxLease), requeueVisibility)
		if err != nil || len(ls) == 0 {
			return moved, err
		}
		now := b.now()
		groups := make([]CommitGroup, len(ls))
		for i, l := range ls {
			m := NewMessage{Value: l.Message.Value}
			if !l.Message.Expires.IsZero() {
				if m.TTL = l.Message.Expires.Sub(now); m.TTL <= 0 {
					m.TTL = time.Nanosecond // expired meanwhile: the reaper drops it
				}
			}
			groups[i] = CommitGroup{
				Acks:   []LeaseRef{{Queue: deadQueue, LeaseID: l.ID}},
				Pushes: []QueuePush{{Queue: origin, Messages: []NewMessage{m}}},
			}
		}
		res, err := b.store.Commit(ctx, CommitParams{Groups: groups, Now: now})
		if err != nil {
			return moved, err
		}
		n := 0
		for _, r := range res {
			if r.Applied {
				n++
			}
		}
		moved += n
		b.counters.Pushes.Add(int64(n))
		b.counters.Acks.Add(int64(n))
		if n == 0 {
			return moved, nil // every lease was lost: stop rather than spin
		}
	}
	return moved, nil
}
