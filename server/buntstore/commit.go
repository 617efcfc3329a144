package buntstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Commit applies groups of changes in one transaction; a group whose lease
// is not live is skipped whole.
func (s *Store) Commit(ctx context.Context, p broker.CommitParams) ([]broker.CommitResult, error) {
	now := nanos(p.Now)
	results := make([]broker.CommitResult, len(p.Groups))
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		clear(results)
		mc := newMetaCache(tx, now)
		acks := batchAcks{tx: tx}
		for i, g := range p.Groups {
			live, err := acks.live(g.Acks)
			if err != nil {
				return err
			}
			if !live {
				continue
			}
			if err := acks.take(g.Acks); err != nil {
				return err
			}
			if len(g.Deletes) > 0 {
				if err := acks.settle(); err != nil { // a delete may break a batch up
					return err
				}
			}
			for _, a := range g.Acks {
				m, err := mc.get(a.Queue)
				if err != nil {
					return err
				}
				m.InFlight--
				m.Acked++
			}
			for _, d := range g.Deletes {
				if err := deleteTx(tx, mc, d.Queue, d.ID); err != nil && !errors.Is(err, broker.ErrMessageNotFound) {
					return err
				}
			}
			for _, push := range g.Pushes {
				msgs, err := pushTx(tx, mc, push.Queue, push.Messages, now)
				if err != nil {
					return err
				}
				if results[i].Pushed == nil {
					results[i].Pushed = msgs // a group's one push, the common case: no copy
				} else {
					results[i].Pushed = append(results[i].Pushed, msgs...)
				}
			}
			if err := kvSetTx(tx, g.KVSet); err != nil {
				return err
			}
			for _, k := range g.KVDelete {
				if _, err := tx.Delete(kvPrefix + k); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
					return err
				}
			}
			if err := recordSetTx(tx, g.RecordSet); err != nil {
				return err
			}
			for _, k := range g.RecordDelete {
				if _, err := tx.Delete(recordPrefix + k); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
					return err
				}
			}
			results[i].Applied = true
		}
		if err := acks.settle(); err != nil {
			return err
		}
		return mc.flush()
	})
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	pushed := map[string]int{}
	for _, r := range results {
		for _, m := range r.Pushed {
			pushed[m.Queue]++
		}
	}
	s.emit(pushEvents(pushed)...)
	return results, nil
}

// batchAcks takes one Commit's acks. Acks of members of a leased batch are
// gathered: each batch is read once, its acked members marked, and the
// batch settled once for all of them (settleBatch), as LeaseAck does; an
// ack of each member on its own would break the batch up at the first
// (a record written for every member, then one deleted at each ack).
// Until settle, the marked members are acked for live and take alone: the
// store holds them still.
type batchAcks struct {
	tx      *buntdb.Tx
	batches map[batchAt]*ackedBatch
	order   []batchAt
}

type batchAt struct {
	q     string
	first uint64
}

// ackedBatch is a batch as read, with its members acked so far.
type ackedBatch struct {
	b     batch
	ok    bool // a batch is stored at its key
	taken []bool
	acked int
}

// member returns the batch that holds the lease ref names and the
// member's index in it, or -1 if no batch holds it unacked.
func (a *batchAcks) member(q string, ref leaseRef) (*ackedBatch, int, error) {
	at := batchAt{q, ref.first}
	ab := a.batches[at]
	if ab == nil {
		b, ok, err := getBatch(a.tx, q, ref.first)
		if err != nil {
			return nil, -1, err
		}
		ab = &ackedBatch{b: b, ok: ok, taken: make([]bool, len(b.ids))}
		if a.batches == nil {
			a.batches = map[batchAt]*ackedBatch{}
		}
		a.batches[at] = ab
		a.order = append(a.order, at)
	}
	if !ab.ok {
		return ab, -1, nil
	}
	j := ab.b.find(ref.id)
	if j < 0 || ab.taken[j] || !ab.b.holds(j, ref) {
		return ab, -1, nil
	}
	return ab, j, nil
}

// live reports whether every lease is live and not acked yet.
func (a *batchAcks) live(acks []broker.LeaseRef) (bool, error) {
	for _, l := range acks {
		ref, ok := parseLeaseID(l.LeaseID)
		if !ok {
			return false, nil
		}
		if ref.batched {
			_, j, err := a.member(l.Queue, ref)
			if err != nil {
				return false, err
			}
			if j >= 0 {
				continue
			}
		}
		_, _, _, err := readLease(l.Queue, ref, l.LeaseID, func(k string) (string, error) { return a.tx.Get(k) })
		if errors.Is(err, broker.ErrLeaseNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// take acks leases that live found live: a batch's member is marked, any
// other lease's record deleted.
func (a *batchAcks) take(acks []broker.LeaseRef) error {
	for _, l := range acks {
		ref, _ := parseLeaseID(l.LeaseID)
		if ref.batched {
			ab, j, err := a.member(l.Queue, ref)
			if err != nil {
				return err
			}
			if j >= 0 {
				ab.taken[j] = true
				ab.acked++
				continue
			}
		}
		if _, _, err := takeFlight(a.tx, l.Queue, ref, l.LeaseID); err != nil {
			return err
		}
	}
	return nil
}

// settle writes the acks of batches' members to the store and forgets the
// batches read.
func (a *batchAcks) settle() error {
	for _, at := range a.order {
		ab := a.batches[at]
		if err := settleBatch(a.tx, at.q, at.first, &ab.b, ab.taken, ab.acked); err != nil {
			return err
		}
	}
	clear(a.batches)
	a.order = a.order[:0]
	return nil
}
