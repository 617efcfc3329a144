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
		for i, g := range p.Groups {
			live, err := allLive(tx, g.Acks)
			if err != nil {
				return err
			}
			if !live {
				continue
			}
			for _, a := range g.Acks {
				if _, _, err := takeLease(tx, a.Queue, a.LeaseID); err != nil {
					return err
				}
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
				results[i].Pushed = append(results[i].Pushed, msgs...)
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

// allLive reports whether every lease is live.
func allLive(tx *buntdb.Tx, acks []broker.LeaseRef) (bool, error) {
	for _, a := range acks {
		_, _, err := liveLease(tx, a.Queue, a.LeaseID)
		if errors.Is(err, broker.ErrLeaseNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}
