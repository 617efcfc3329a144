package buntstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// putFlight stores an in-flight message. Its deadline goes into the index
// through indexDeadlines, once for a whole leased batch.
func putFlight(tx *buntdb.Tx, q string, id uint64, r *record) error {
	_, _, err := tx.Set(flightKey(q, id), r.encode(), nil)
	return err
}

// deleteFlight removes an in-flight message. Its deadline index entry stays
// until it falls due: the reaper then finds no lease of that deadline there
// and drops it (see reapLeases).
func deleteFlight(tx *buntdb.Tx, q string, id uint64) error {
	_, err := tx.Delete(flightKey(q, id))
	return err
}

// indexDeadlines adds one deadline index entry for the in-flight messages
// ids of q, all due at at. The entry's key carries the first id (to keep
// batches of one deadline apart); an entry of one message has an empty
// value, naming the key's id, and one of more lists them all. Should the
// key exist already (one deadline, one first id: a message released and
// leased again at the same instant), the two lists are merged.
func indexDeadlines(tx *buntdb.Tx, q string, at int64, ids []uint64) error {
	key := timeKey(deadlinePrefix, at, q, ids[0])
	val := ""
	if len(ids) > 1 {
		val = encodeIDs(ids)
	}
	prev, replaced, err := tx.Set(key, val, nil)
	if err != nil || !replaced {
		return err
	}
	old, err := entryIDs(key, prev)
	if err != nil {
		return err
	}
	_, _, err = tx.Set(key, encodeIDs(append(old, ids...)), nil)
	return err
}

// maxEntryIDs bounds the ids one deadline index entry may list when read
// back (a leased batch holds at most broker.MaxLease; merges add a few).
const maxEntryIDs = 1 << 20

// encodeIDs encodes a deadline index entry's list of ids.
func encodeIDs(ids []uint64) string {
	b := make([]byte, 0, len(ids)*3)
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return string(b)
}

// entryIDs returns the ids a deadline index entry names: the key's own for
// an empty value (as layout 2 wrote every entry), else the listed ones.
func entryIDs(key, val string) ([]uint64, error) {
	if val == "" {
		_, _, id, err := parseTimeKey(key)
		if err != nil {
			return nil, err
		}
		return []uint64{id}, nil
	}
	var ids []uint64
	b := []byte(val)
	for len(b) > 0 {
		id, n := binary.Uvarint(b)
		if n <= 0 || len(ids) == maxEntryIDs {
			return nil, fmt.Errorf("lease index %q: %w", truncate(key, 60), errCorrupt)
		}
		ids = append(ids, id)
		b = b[n:]
	}
	return ids, nil
}

// liveLease returns the in-flight record that leaseID names, or
// ErrLeaseNotFound. A lease in a batch is first put in flight alone
// (unbatch), as every change but an ack wants it.
func liveLease(tx *buntdb.Tx, q, lease string) (uint64, record, error) {
	ref, err := aloneRef(tx, q, lease)
	if err != nil {
		return 0, record{}, err
	}
	id, r, _, err := readLease(q, ref, lease, func(k string) (string, error) { return tx.Get(k) })
	return id, r, err
}

// aloneRef parses lease and breaks up the batch it is in, if any, so that
// it is an f: record; a lease id that nothing made is ErrLeaseNotFound.
func aloneRef(tx *buntdb.Tx, q, lease string) (leaseRef, error) {
	ref, ok := parseLeaseID(lease)
	if !ok {
		return ref, broker.ErrLeaseNotFound
	}
	return ref, unbatch(tx, q, ref)
}

// takeFlight deletes and returns the f: record of the lease ref names, or
// returns ErrLeaseNotFound and leaves the store as it was: one B-tree
// operation for a live lease, where a look-up and a delete were two.
func takeFlight(tx *buntdb.Tx, q string, ref leaseRef, lease string) (uint64, record, error) {
	id, r, v, err := readLease(q, ref, lease, tx.Delete)
	if errors.Is(err, broker.ErrLeaseNotFound) && v != "" {
		if _, _, err := tx.Set(flightKey(q, id), v, nil); err != nil {
			return 0, record{}, err
		}
	}
	return id, r, err
}

// readLease reads the f: record of the lease ref names through read (a
// look-up or a delete of its key). It returns ErrLeaseNotFound for a lease
// that is not live, with the stored value v when there was one.
func readLease(q string, ref leaseRef, lease string, read func(key string) (string, error)) (id uint64, r record, v string, err error) {
	id = ref.id
	v, err = read(flightKey(q, id))
	if errors.Is(err, buntdb.ErrNotFound) {
		return 0, record{}, "", broker.ErrLeaseNotFound
	}
	if err != nil {
		return 0, record{}, "", err
	}
	r, err = decodeRecord(v)
	if err != nil {
		return 0, record{}, "", fmt.Errorf("lease %s: %w", lease, err)
	}
	if r.released || r.leaseSeq != ref.seq || r.created != ref.created {
		return id, record{}, v, broker.ErrLeaseNotFound
	}
	return id, r, v, nil
}

// LeaseAck deletes the leased messages.
func (s *Store) LeaseAck(ctx context.Context, queue string, leaseIDs []string) ([]string, error) {
	var unknown []string
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		m, ok, err := getMeta(tx, queue)
		if err != nil {
			return err
		}
		if !ok {
			unknown = append(unknown[:0], leaseIDs...)
			return nil
		}
		var acked int64
		acked, unknown, err = ackTx(tx, queue, leaseIDs)
		if err != nil {
			return err
		}
		m.InFlight -= acked
		m.Acked += acked
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
		r.deadline = nanos(deadline)
		if err := putFlight(tx, queue, id, &r); err != nil {
			return err
		}
		if err := indexDeadlines(tx, queue, r.deadline, []uint64{id}); err != nil {
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
	if err := deleteFlight(tx, q, id); err != nil {
		return err
	}
	return toReady(tx, mc, q, id, r)
}

// toReady puts a message taken out of flight back at the head of its queue.
func toReady(tx *buntdb.Tx, mc *metaCache, q string, id uint64, r *record) error {
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
	r.released = true
	r.deadline = at
	if err := putFlight(tx, q, id, r); err != nil {
		return err
	}
	if err := indexDeadlines(tx, q, at, []uint64{id}); err != nil {
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
	if err := deleteFlight(tx, q, id); err != nil {
		return err
	}
	return toDead(tx, mc, q, id, r, now)
}

// toDead puts a message taken out of flight at the tail of its queue's
// dead-letter queue.
func toDead(tx *buntdb.Tx, mc *metaCache, q string, id uint64, r *record, now int64) error {
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
		done, err := reapLeases(tx, mc, p, now, limit, &res)
		if err != nil {
			return err
		}
		if err := reapBatches(tx, mc, p, now, limit-done, &res); err != nil {
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

// reapLeases requeues or dead-letters up to limit leases of layout 3 that
// are due, and returns how many. An
// index entry names the messages leased until its time; one that was acked,
// released or extended since is no longer in flight with that deadline and
// is passed over. An entry is dropped once all it names are handled, or
// rewritten with the rest when the limit cuts it short.
func reapLeases(tx *buntdb.Tx, mc *metaCache, p broker.ReapParams, now int64, limit int, res *broker.ReapResult) (int, error) {
	keys, vals, err := scan(tx, deadlinePrefix, deadlinePrefix+hex16(uint64(now)+1), limit+1)
	if err != nil {
		return 0, err
	}
	if len(keys) > limit {
		keys, vals, res.More = keys[:limit], vals[:limit], true
	}
	done := 0
	for i, k := range keys {
		at, q, _, err := parseTimeKey(k)
		if err != nil {
			return 0, err
		}
		ids, err := entryIDs(k, vals[i])
		if err != nil {
			return 0, err
		}
		for j, id := range ids {
			if done == limit {
				res.More = true
				_, _, err := tx.Set(k, encodeIDs(ids[j:]), nil)
				return done, err
			}
			handled, err := reapLease(tx, mc, p, q, id, at, now, res)
			if err != nil {
				return 0, err
			}
			if handled {
				done++
			}
		}
		if _, err := tx.Delete(k); err != nil {
			return 0, err
		}
		if done == limit && i+1 < len(keys) {
			res.More = true
			return done, nil
		}
	}
	return done, nil
}

// reapLease requeues or dead-letters message id of q if it is in flight
// until at, and reports whether it was.
func reapLease(tx *buntdb.Tx, mc *metaCache, p broker.ReapParams, q string, id uint64, at, now int64, res *broker.ReapResult) (bool, error) {
	v, err := tx.Get(flightKey(q, id))
	if errors.Is(err, buntdb.ErrNotFound) {
		return false, nil // acked or returned since
	}
	if err != nil {
		return false, err
	}
	r, err := decodeRecord(v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", truncate(flightKey(q, id), 60), err)
	}
	if r.deadline != at {
		return false, nil // extended, or nacked with a delay: another entry names it
	}
	if err := deleteFlight(tx, q, id); err != nil {
		return false, err
	}
	return expireLease(tx, mc, p, q, id, &r, now, res)
}

// expireLease returns a message whose lease fell due, taken out of
// flight: a delayed one as it is, else with one more attempt, to the
// dead-letter queue once it has had p.MaxAttempts.
func expireLease(tx *buntdb.Tx, mc *metaCache, p broker.ReapParams, q string, id uint64, r *record, now int64, res *broker.ReapResult) (bool, error) {
	var err error
	switch {
	case r.released:
		err = toReady(tx, mc, q, id, r)
		res.Requeued[q]++
	case p.MaxAttempts > 0 && r.attempts+1 >= p.MaxAttempts && !isDeadQueue(q):
		r.attempts++
		r.err = "lease expired"
		err = toDead(tx, mc, q, id, r, now)
		res.DeadLettered[q]++
	default:
		r.attempts++
		err = toReady(tx, mc, q, id, r)
		res.Requeued[q]++
	}
	return true, err
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
