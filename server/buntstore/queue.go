package buntstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// QueuePush appends messages to a queue.
func (s *Store) QueuePush(ctx context.Context, p broker.QueuePushParams) ([]broker.Message, error) {
	now := nanos(p.Now)
	var out []broker.Message
	err := s.pushes.do(ctx, now, func(tx *buntdb.Tx, st *groupState) error {
		var err error
		out, err = pushTx(tx, st.metas, p.Queue, p.Messages, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("push to %s: %w", p.Queue, err)
	}
	s.emit(broker.Event{Kind: broker.EventPush, Queue: p.Queue})
	return out, nil
}

// pushTx appends messages to a queue inside a transaction.
func pushTx(tx *buntdb.Tx, mc *metaCache, q string, msgs []broker.NewMessage, now int64) ([]broker.Message, error) {
	m, err := mc.get(q)
	if err != nil {
		return nil, err
	}
	out := make([]broker.Message, 0, len(msgs))
	for _, nm := range msgs {
		m.LastID++
		r := record{created: now, value: nm.Value}
		if nm.TTL > 0 {
			r.expires = now + int64(nm.TTL)
		}
		if err := putReady(tx, q, m.LastID, &r); err != nil {
			return nil, err
		}
		out = append(out, r.message(q, m.LastID))
	}
	m.Length += int64(len(msgs))
	m.Pushed += int64(len(msgs))
	return out, nil
}

// putReady stores a ready message and its TTL index entry.
func putReady(tx *buntdb.Tx, q string, id uint64, r *record) error {
	if _, _, err := tx.Set(readyKey(q, id), r.encode(), nil); err != nil {
		return err
	}
	if r.expires != 0 {
		if _, _, err := tx.Set(timeKey(ttlPrefix, r.expires, q, id), "", nil); err != nil {
			return err
		}
	}
	return nil
}

// deleteReady removes a ready message and its TTL index entry.
func deleteReady(tx *buntdb.Tx, q string, id uint64, r *record) error {
	return deleteReadyAt(tx, readyKey(q, id), q, id, r)
}

// deleteReadyAt is deleteReady with the message's key given (the stored
// one a scan found: no key is formatted again).
func deleteReadyAt(tx *buntdb.Tx, key, q string, id uint64, r *record) error {
	if _, err := tx.Delete(key); err != nil {
		return err
	}
	if r.expires != 0 {
		if _, err := tx.Delete(timeKey(ttlPrefix, r.expires, q, id)); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
	}
	return nil
}

// readyMsg is a ready message a scan found, with its stored key.
type readyMsg struct {
	key string
	id  uint64
	rec record
}

// delete removes the ready message from q (deleteReady).
func (g *readyMsg) delete(tx *buntdb.Tx, q string) error {
	return deleteReadyAt(tx, g.key, q, g.id, &g.rec)
}

// maxOldestCap bounds what oldest sets aside for its answer before the scan.
const maxOldestCap = 1024

// oldest returns up to n deliverable messages from the head of the queue,
// deleting the expired ones it passes over (and counting them out of m).
func oldest(tx *buntdb.Tx, q string, m *meta, n int, now int64) ([]readyMsg, error) {
	out := make([]readyMsg, 0, max(min(int64(n), m.Length, maxOldestCap), 1))
	var expired []readyMsg
	lo, hi := queueRange(readyPrefix, q)
	var decodeErr error
	err := tx.AscendRange("", lo, hi, func(k, v string) bool {
		r, err := decodeRecord(v)
		if err != nil {
			decodeErr = fmt.Errorf("%s: %w", k, err)
			return false
		}
		_, id, err := parseMessageKey(k)
		if err != nil {
			decodeErr = err
			return false
		}
		if r.expired(now) {
			expired = append(expired, readyMsg{k, id, r})
			return len(expired) < 10000
		}
		out = append(out, readyMsg{k, id, r})
		return len(out) < n
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, err
	}
	for i := range expired {
		if err := expired[i].delete(tx, q); err != nil {
			return nil, err
		}
		m.Length--
	}
	return out, nil
}

// QueueTake removes and returns the oldest deliverable message.
func (s *Store) QueueTake(ctx context.Context, queue string, now time.Time) (broker.Message, error) {
	return s.takeOrPeek(ctx, queue, now, true)
}

// QueueTakeN removes and returns up to n of the oldest deliverable
// messages in one transaction (see broker.MultiTaker).
func (s *Store) QueueTakeN(ctx context.Context, queue string, n int, now time.Time) ([]broker.Message, error) {
	var out []broker.Message
	err := s.takes.do(ctx, nanos(now), func(tx *buntdb.Tx, st *groupState) error {
		out = out[:0]
		m, ok, err := st.metas.known(queue)
		if err != nil || !ok || m.Length == 0 {
			return err
		}
		st.metas.hold(queue, m) // also when only expired ones are passed over
		got, err := oldest(tx, queue, m, n, nanos(now))
		if err != nil {
			return err
		}
		for i := range got {
			g := &got[i]
			if err := g.delete(tx, queue); err != nil {
				return err
			}
			g.rec.count++
			out = append(out, g.rec.message(queue, g.id))
		}
		m.Length -= int64(len(got))
		m.Delivered += int64(len(got))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get from %s: %w", queue, err)
	}
	if len(out) == 0 {
		return nil, broker.ErrQueueEmpty
	}
	return out, nil
}

// QueuePeek returns the oldest deliverable message and raises its count.
func (s *Store) QueuePeek(ctx context.Context, queue string, now time.Time) (broker.Message, error) {
	return s.takeOrPeek(ctx, queue, now, false)
}

func (s *Store) takeOrPeek(ctx context.Context, queue string, now time.Time, take bool) (broker.Message, error) {
	var msg broker.Message
	empty := false
	err := s.takes.do(ctx, nanos(now), func(tx *buntdb.Tx, st *groupState) error {
		empty = false
		m, ok, err := st.metas.known(queue)
		if err != nil {
			return err
		}
		if !ok || m.Length == 0 {
			empty = true // an answer, not a failure: the group goes on
			return nil
		}
		st.metas.hold(queue, m) // also when only expired ones are passed over
		got, err := oldest(tx, queue, m, 1, nanos(now))
		if err != nil {
			return err
		}
		if len(got) == 0 {
			empty = true
			return nil
		}
		g := got[0]
		g.rec.count++
		m.Delivered++
		if take {
			if err := g.delete(tx, queue); err != nil {
				return err
			}
			m.Length--
		} else if _, _, err := tx.Set(readyKey(queue, g.id), g.rec.encode(), nil); err != nil {
			return err
		}
		msg = g.rec.message(queue, g.id)
		return nil
	})
	if err == nil && empty {
		return msg, broker.ErrQueueEmpty
	}
	if err != nil && !errors.Is(err, broker.ErrQueueEmpty) {
		err = fmt.Errorf("get from %s: %w", queue, err)
	}
	return msg, err
}

// QueueLease leases up to p.N of the oldest deliverable messages.
func (s *Store) QueueLease(ctx context.Context, p broker.QueueLeaseParams) ([]broker.Lease, error) {
	now := nanos(p.Now)
	deadline := now + int64(p.Visibility)
	var out []broker.Lease
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		out = out[:0]
		m, ok, err := getMeta(tx, p.Queue)
		if err != nil || !ok || m.Length == 0 || p.N <= 0 {
			return err
		}
		got, err := oldest(tx, p.Queue, &m, p.N, now)
		if err != nil {
			return err
		}
		for i := range got {
			g := &got[i]
			if err := g.delete(tx, p.Queue); err != nil {
				return err
			}
			g.rec.count++
			g.rec.leaseSeq = g.rec.count
			g.rec.deadline = deadline
			g.rec.released = false
			g.rec.owner = p.Owner
		}
		batched, err := leaseBatch(tx, p.Queue, got)
		if err != nil {
			return err
		}
		var ids []uint64
		if !batched {
			ids = make([]uint64, 0, len(got))
		}
		leaseIDs := leaseIDs(got, batched)
		out = make([]broker.Lease, 0, len(got))
		for i := range got {
			g := &got[i]
			if !batched {
				if err := putFlight(tx, p.Queue, g.id, &g.rec); err != nil {
					return err
				}
				ids = append(ids, g.id)
			}
			out = append(out, broker.Lease{ID: leaseIDs[i], Message: g.rec.message(p.Queue, g.id), Deadline: fromNanos(deadline)})
		}
		if len(ids) > 0 {
			if err := indexDeadlines(tx, p.Queue, deadline, ids); err != nil {
				return err
			}
		}
		m.Length -= int64(len(got))
		m.InFlight += int64(len(got))
		m.Delivered += int64(len(got))
		return putMeta(tx, p.Queue, m)
	})
	if err != nil {
		return nil, fmt.Errorf("lease from %s: %w", p.Queue, err)
	}
	return out, nil
}

// QueueGet returns one queue's state.
func (s *Store) QueueGet(ctx context.Context, queue string) (broker.QueueInfo, error) {
	var info broker.QueueInfo
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		m, ok, err := getMeta(tx, queue)
		if err != nil {
			return err
		}
		if !ok {
			return broker.ErrQueueNotFound
		}
		info = m.info(queue)
		return nil
	})
	return info, err
}

// QueueList returns every queue's state, sorted by name.
func (s *Store) QueueList(ctx context.Context) ([]broker.QueueInfo, error) {
	var out []broker.QueueInfo
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		keys, vals, err := scan(tx, metaPrefix, prefixEnd(metaPrefix), 0)
		if err != nil {
			return err
		}
		out = make([]broker.QueueInfo, 0, len(keys))
		for i, k := range keys {
			var m meta
			if err := decodeMeta(vals[i], &m); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			out = append(out, m.info(k[len(metaPrefix):]))
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// QueuePurge deletes everything of a queue.
func (s *Store) QueuePurge(ctx context.Context, queue string) error {
	err := s.update(ctx, func(tx *buntdb.Tx) error { return purgeTx(tx, queue) })
	if err == nil {
		s.emit(broker.Event{Kind: broker.EventPurge, Queue: queue})
	}
	return err
}

// purgeTx deletes a queue's messages, their index entries and its state.
func purgeTx(tx *buntdb.Tx, queue string) error {
	if _, err := deleteMessages(tx, queue); err != nil {
		return err
	}
	if _, err := tx.Delete(metaKey(queue)); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
		return err
	}
	return nil
}

// QueueClear deletes a queue's messages and keeps its state.
func (s *Store) QueueClear(ctx context.Context, queue string) (int64, error) {
	var n int64
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		m, ok, err := getMeta(tx, queue)
		if err != nil || !ok {
			return err
		}
		if n, err = deleteMessages(tx, queue); err != nil {
			return err
		}
		m.Length, m.InFlight = 0, 0
		return putMeta(tx, queue, m)
	})
	if err != nil {
		return 0, fmt.Errorf("clear %s: %w", queue, err)
	}
	s.emit(broker.Event{Kind: broker.EventPurge, Queue: queue})
	return n, nil
}

// deleteMessages deletes every message of a queue, ready or in flight, with
// its TTL index entries, and reports how many there were. Deadline index
// entries of layout 3 are left to the reaper, which finds no lease behind
// them; a batch's goes with it.
func deleteMessages(tx *buntdb.Tx, queue string) (int64, error) {
	var n int64
	lo, hi := queueRange(readyPrefix, queue)
	err := scanRecords(tx, lo, hi, 0, func(_ string, id uint64, r record) error {
		n++
		return deleteReady(tx, queue, id, &r)
	})
	if err != nil {
		return n, err
	}
	lo, hi = queueRange(flightPrefix, queue)
	err = scanRecords(tx, lo, hi, 0, func(_ string, id uint64, r record) error {
		n++
		return deleteFlight(tx, queue, id)
	})
	if err != nil {
		return n, err
	}
	nb, err := deleteBatches(tx, queue)
	return n + nb, err
}

// QueueSetStatus pauses or resumes a queue.
func (s *Store) QueueSetStatus(ctx context.Context, queue string, st broker.Status) error {
	return s.setMeta(ctx, queue, func(m *meta) { m.Status = st })
}

// QueueSetPolicy sets a queue's live-delivery policy.
func (s *Store) QueueSetPolicy(ctx context.Context, queue string, p broker.Policy) error {
	return s.setMeta(ctx, queue, func(m *meta) { m.Policy = p })
}

func (s *Store) setMeta(ctx context.Context, queue string, change func(*meta)) error {
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		m, err := loadMeta(tx, queue, nanos(time.Now()))
		if err != nil {
			return err
		}
		change(&m)
		return putMeta(tx, queue, m)
	})
	if err == nil {
		s.emit(broker.Event{Kind: broker.EventState, Queue: queue})
	}
	return err
}

// MessageDelete deletes one message, ready or leased.
func (s *Store) MessageDelete(ctx context.Context, queue string, id uint64) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		mc := newMetaCache(tx, 0)
		if err := deleteTx(tx, mc, queue, id); err != nil {
			return err
		}
		return mc.flush()
	})
}

// deleteTx deletes one message, ready or leased, inside a transaction.
func deleteTx(tx *buntdb.Tx, mc *metaCache, queue string, id uint64) error {
	if _, ok, err := getMeta(tx, queue); err != nil || !ok {
		if err == nil {
			err = broker.ErrMessageNotFound
		}
		return err
	}
	m, err := mc.get(queue)
	if err != nil {
		return err
	}
	if v, err := tx.Get(readyKey(queue, id)); err == nil {
		r, err := decodeRecord(v)
		if err != nil {
			return err
		}
		if err := deleteReady(tx, queue, id, &r); err != nil {
			return err
		}
		m.Length--
		return nil
	}
	v, err := tx.Get(flightKey(queue, id))
	if errors.Is(err, buntdb.ErrNotFound) {
		var found bool
		if found, err = unbatchID(tx, queue, id); err == nil && found {
			v, err = tx.Get(flightKey(queue, id))
		} else if err == nil {
			return broker.ErrMessageNotFound
		}
	}
	if err != nil {
		return err
	}
	r, err := decodeRecord(v)
	if err != nil {
		return err
	}
	if err := deleteFlight(tx, queue, id); err != nil {
		return err
	}
	if r.released {
		m.Length-- // delayed after a nack: counted as waiting
	} else {
		m.InFlight--
	}
	return nil
}

// QueueScan returns ready messages after afterID without changing them.
func (s *Store) QueueScan(ctx context.Context, queue string, afterID uint64, limit int) ([]broker.Message, error) {
	var out []broker.Message
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		out = out[:0]
		_, hi := queueRange(readyPrefix, queue)
		return scanRecords(tx, readyKey(queue, afterID+1), hi, limit, func(_ string, id uint64, r record) error {
			out = append(out, r.message(queue, id))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", queue, err)
	}
	return out, nil
}
