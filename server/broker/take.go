package broker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MultiTaker is a Store that can take several messages in one operation
// (one transaction of its own); Broker.TakeN uses it when the store has it
// and takes one message at a time when it does not.
type MultiTaker interface {
	// QueueTakeN removes and returns up to n of the oldest deliverable
	// messages, oldest first, as n QueueTakes in a row would; none is
	// ErrQueueEmpty.
	QueueTakeN(ctx context.Context, queue string, n int, now time.Time) ([]Message, error)
}

// TakeN removes and returns up to n of the oldest messages, oldest first
// (n hard gets in a row). It returns ErrQueueEmpty when there is none, or
// ErrQueuePaused while the queue is paused; n is at most Config.MaxLease.
func (b *Broker) TakeN(ctx context.Context, queue string, n int) ([]Message, error) {
	if err := CheckQueueName(queue); err != nil {
		return nil, err
	}
	if n <= 0 || n > b.cfg.MaxLease {
		return nil, fmt.Errorf("%w: n %d is outside 1..%d", ErrInvalid, n, b.cfg.MaxLease)
	}
	if err := b.checkDeliverable(ctx, queue); err != nil {
		return nil, err
	}
	var out []Message
	var err error
	if mt, ok := b.store.(MultiTaker); ok {
		out, err = mt.QueueTakeN(ctx, queue, n, b.now())
	} else {
		for len(out) < n {
			var m Message
			if m, err = b.store.QueueTake(ctx, queue, b.now()); err != nil {
				break
			}
			out = append(out, m)
		}
		if len(out) > 0 && errors.Is(err, ErrQueueEmpty) {
			err = nil
		}
	}
	b.counters.Takes.Add(int64(len(out)))
	return out, err
}
