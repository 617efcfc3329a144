package buntstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// putFlight stores an in-flight message and its deadline index entry.
func putFlight(tx *buntdb.Tx, q string, id uint64, r *record) error {
	if _, _, err := tx.Set(flightKey(q, id), r.encode(), nil); err != nil {
		return err
	}
	_, _, err := tx.Set(timeKey(deadlinePrefix, r.deadline, q, id), "", nil)
	return err
}

// deleteFlight removes an in-flight message and its deadline index entry.
func deleteFlight(tx *buntdb.Tx, q string, id uint64, r *record) error {
	if _, err := tx.Delete(flightKey(q, id)); err != nil {
		return err
	}
	if _, err := tx.Delete(timeKey(deadlinePrefix, r.deadline, q, id)); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
		return err
	}
	return nil
}

// liveLease returns the in-flight record that leaseID names, or
// ErrLeaseNotFound.
func liveLease(tx *buntdb.Tx, q, lease string) (uint64, record, error) {
	id, seq, created, ok := parseLeaseID(lease)
	if !ok {
		return 0, record{}, broker.ErrLeaseNotFound
	}
	v, err := tx.Get(flightKey(q, id))
	if errors.Is(err, buntdb.ErrNotFound) {
		return 0, record{}, broker.ErrLeaseNotFound
	}
	if err != nil {
		return 0, record{}, err
	}
	r, err := decodeRecord(v)
	if err != nil {
		return 0, record{}, fmt.Errorf("lease %s: %w", lease, err)
	}
	if r.released || r.leaseSeq != seq || r.created != created {
		return 0, record{}, broker.ErrLeaseNotFound
	}
	return id, r, nil
}

// LeaseAck deletes the leased messages.
func (s *Store) LeaseAck(ctx context.Context, queue string, leaseIDs []string) ([]string, error) {
	var unknown []string
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		unknown = unknown[:0]
		m, ok, err := getMeta(tx, queue)
		if err != nil {
			return err
		}
		if !ok {
			unknown = append(unknown, leaseIDs...)
			return nil
		}
		unknown, err = eachLiveLease(tx, queue, leaseIDs, func(id uint64, r *record) error {
			m.InFlight--
			m.Acked++
			return deleteFlight(tx, queue, id, r)
		})
		if err != nil {
			return err
		}
		return putMeta(tx, queue, m)
	})
	if err != nil {
		return nil, fmt.Errorf("ack on %s: %w", queue, err)
	}
	return unknown, nil
}

// LeaseNack ends a lease early with an error.
func (s *Store) LeaseNack(ctx context.Context, p broker.LeaseNackParams) (bool, error) {
	now := nanos(p.Now)
	dead := false
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		id, r, err := liveLease(tx, p.Queue, p.LeaseID)
		if err != nil {
			return err
		}
		mc := newMetaCache(tx, now)
		r.attempts++
		r.err = p.Error
		switch {
		case p.MaxAttempts > 0 && r.attempts >= p.MaxAttempts && !isDeadQueue(p.Queue):
			dead = true
			err = deadLetter(tx, mc, p.Queue, id, &r, now)
		case p.Delay <= 0:
			err = requeue(tx, mc, p.Queue, id, &r)
		default:
			err = delay(tx, mc, p.Queue, id, &r, now+int64(p.Delay))
		}
		if err != nil {
			return err
		}
		return mc.flush()
	})
	if err != nil {
		return false, fmt.Errorf("nack on %s: %w", p.Queue, err)
	}
	switch {
	case dead:
		s.emit(broker.Event{Kind: broker.EventPush, Queue: broker.DeadQueue(p.Queue)})
	case p.Delay <= 0:
		s.emit(broker.Event{Kind: broker.EventPush, Queue: p.Queue})
	}
	return dead, nil
}

// LeaseExtend moves a live lease's deadline.
func (s *Store) LeaseExtend(ctx context.Context, queue, lease string, deadline time.Time) (broker.Lease, error) {
	var out broker.Lease
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		id, r, err := liveLease(tx, queue, lease)
		if err != nil {
			return err
		}
		if err := deleteFlight(tx, queue, id, &r); err != nil {
			return err
		}
		r.deadline = nanos(deadline)
		if err := putFlight(tx, queue, id, &r); err != nil {
			return err
		}
		out = broker.Lease{ID: lease, Message: r.message(queue, id), Deadline: deadline}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("extend on %s: %w", queue, err)
	}
	return out, nil
}

// requeue moves an in-flight message back to the head of its queue: it keeps
// its id, so it sorts before every message pushed after it.
func requeue(tx *buntdb.Tx, mc *metaCache, q string, id uint64, r *record) error {
	if err := deleteFlight(tx, q, id, r); err != nil {
		return err
	}
	wasDelayed := r.released
	r.leaseSeq, r.deadline, r.released = 0, 0, false
	if err := putReady(tx, q, id, r); err != nil {
		return err
	}
	if !wasDelayed { // a delayed message already counts in Length
		return moveCount(mc, q, -1, +1)
	}
	return nil
}

// moveCount changes a queue's InFlight and Length counts.
func moveCount(mc *metaCache, q string, inFlight, length int64) error {
	m, err := mc.get(q)
	if err != nil {
		return err
	}
	m.InFlight += inFlight
	m.Length += length
	return nil
}

// delay keeps a nacked message aside, with no live lease, until at; it
// counts as waiting (Length), not in flight.
func delay(tx *buntdb.Tx, mc *metaCache, q string, id uint64, r *record, at int64) error {
	if err := deleteFlight(tx, q, id, r); err != nil {
		return err
	}
	r.released = true
	r.deadline = at
	if err := putFlight(tx, q, id, r); err != nil {
		return err
	}
	return moveCount(mc, q, -1, +1)
}

// isDeadQueue reports whether q is a dead-letter queue, whose messages are
// never dead-lettered again.
func isDeadQueue(q string) bool {
	_, ok := broker.DeadLetterOf(q)
	return ok
}

// deadLetter moves an in-flight message to the tail of the queue's
// dead-letter queue.
func deadLetter(tx *buntdb.Tx, mc *metaCache, q string, id uint64, r *record, now int64) error {
	if err := deleteFlight(tx, q, id, r); err != nil {
		return err
	}
	m, err := mc.get(q)
	if err != nil {
		return err
	}
	m.InFlight--
	m.Dead++
	dq := broker.DeadQueue(q)
	dm, err := mc.get(dq)
	if err != nil {
		return err
	}
	dm.LastID++
	dm.Length++
	dm.Pushed++
	dr := record{attempts: r.attempts, err: r.err, created: now, value: r.value}
	return putReady(tx, dq, dm.LastID, &dr)
}

// Reap requeues or dead-letters expired leases and drops expired messages.
func (s *Store) Reap(ctx context.Context, p broker.ReapParams) (broker.ReapResult, error) {
	now := nanos(p.Now)
	res := broker.ReapResult{Requeued: map[string]int{}, DeadLettered: map[string]int{}}
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		res = broker.ReapResult{Requeued: map[string]int{}, DeadLettered: map[string]int{}}
		mc := newMetaCache(tx, now)
		if err := reapLeases(tx, mc, p, now, limit, &res); err != nil {
			return err
		}
		if err := reapTTL(tx, mc, now, limit, &res); err != nil {
			return err
		}
		return mc.flush()
	})
	if err != nil {
		return res, fmt.Errorf("reap: %w", err)
	}
	s.emit(pushEvents(res.Requeued)...)
	dead := map[string]int{}
	for q, n := range res.DeadLettered {
		dead[broker.DeadQueue(q)] = n
	}
	s.emit(pushEvents(dead)...)
	return res, nil
}

func reapLeases(tx *buntdb.Tx, mc *metaCache, p broker.ReapParams, now int64, limit int, res *broker.ReapResult) error {
	keys, _, err := scan(tx, deadlinePrefix, deadlinePrefix+hex16(uint64(now)+1), limit+1)
	if err != nil {
		return err
	}
	if len(keys) > limit {
		keys, res.More = keys[:limit], true
	}
	for _, k := range keys {
		_, q, id, err := parseTimeKey(k)
		if err != nil {
			return err
		}
		v, err := tx.Get(flightKey(q, id))
		if err != nil {
			return fmt.Errorf("lease index %s: %w", k, err)
		}
		r, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		switch {
		case r.released:
			err = requeue(tx, mc, q, id, &r)
			res.Requeued[q]++
		case p.MaxAttempts > 0 && r.attempts+1 >= p.MaxAttempts && !isDeadQueue(q):
			r.attempts++
			r.err = "lease expired"
			err = deadLetter(tx, mc, q, id, &r, now)
			res.DeadLettered[q]++
		default:
			r.attempts++
			err = requeue(tx, mc, q, id, &r)
			res.Requeued[q]++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func reapTTL(tx *buntdb.Tx, mc *metaCache, now int64, limit int, res *broker.ReapResult) error {
	keys, _, err := scan(tx, ttlPrefix, ttlPrefix+hex16(uint64(now)+1), limit+1)
	if err != nil {
		return err
	}
	if len(keys) > limit {
		keys, res.More = keys[:limit], true
	}
	for _, k := range keys {
		_, q, id, err := parseTimeKey(k)
		if err != nil {
			return err
		}
		if _, err := tx.Delete(k); err != nil {
			return err
		}
		if _, err := tx.Delete(readyKey(q, id)); errors.Is(err, buntdb.ErrNotFound) {
			continue // leased since; dropped when it returns, if still expired
		} else if err != nil {
			return err
		}
		m, err := mc.get(q)
		if err != nil {
			return err
		}
		m.Length--
		res.Expired++
	}
	return nil
}

// LeaseRelease returns leased messages to the head of their queue, keeping
// their Attempts.
func (s *Store) LeaseRelease(ctx context.Context, queue string, leaseIDs []string) ([]string, error) {
	var unknown []string
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		unknown = unknown[:0]
		mc := newMetaCache(tx, 0)
		var err error
		unknown, err = eachLiveLease(tx, queue, leaseIDs, func(id uint64, r *record) error {
			return requeue(tx, mc, queue, id, r)
		})
		if err != nil {
			return err
		}
		return mc.flush()
	})
	if err != nil {
		return nil, fmt.Errorf("release on %s: %w", queue, err)
	}
	if len(unknown) < len(leaseIDs) {
		s.emit(broker.Event{Kind: broker.EventPush, Queue: queue})
	}
	return unknown, nil
}

// eachLiveLease calls fn for every id in leaseIDs that names a live lease
// of queue and returns the others.
func eachLiveLease(tx *buntdb.Tx, queue string, leaseIDs []string, fn func(id uint64, r *record) error) (unknown []string, err error) {
	for _, l := range leaseIDs {
		id, r, err := liveLease(tx, queue, l)
		if errors.Is(err, broker.ErrLeaseNotFound) {
			unknown = append(unknown, l)
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := fn(id, &r); err != nil {
			return nil, err
		}
	}
	return unknown, nil
}
