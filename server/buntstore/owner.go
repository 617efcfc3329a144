package buntstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// owners are the lease owners alive in this store. The store holds its
// directory exclusively, so an owner is alive from its first heartbeat
// after Open until it says it stopped; deadlines do not matter (a process
// slow to send its heartbeat is still the only one there). dirty is set
// while leases of owners that are gone may remain: at Open, and when an
// owner stops.
type owners struct {
	mu    sync.Mutex
	alive map[string]bool
	clean bool // no lease of a dead owner remains
}

func (o *owners) isAlive(owner string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.alive[owner]
}

// OwnerHeartbeat records that owner is alive, or with a zero Until that it
// stopped.
func (s *Store) OwnerHeartbeat(ctx context.Context, p broker.OwnerParams) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &s.owned
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.alive == nil {
		o.alive = map[string]bool{}
	}
	if p.Until.IsZero() {
		if o.alive[p.Owner] {
			o.clean = false
		}
		delete(o.alive, p.Owner)
		return nil
	}
	o.alive[p.Owner] = true
	return nil
}

// LeaseRecover returns the leases of owners that are gone to their queues.
func (s *Store) LeaseRecover(ctx context.Context, p broker.LeaseRecoverParams) (broker.RecoverResult, error) {
	res := broker.RecoverResult{Released: map[string]int{}}
	o := &s.owned
	o.mu.Lock()
	clean := o.clean
	o.clean = true // set back below if the limit cuts the scan short
	o.mu.Unlock()
	if clean {
		return res, nil
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		res = broker.RecoverResult{Released: map[string]int{}}
		mc := newMetaCache(tx, 0)
		n := 0
		err := scanRecords(tx, flightPrefix, prefixEnd(flightPrefix), 0, func(q string, id uint64, r record) error {
			if r.released || s.owned.isAlive(r.owner) {
				return nil // nacked with a delay (the reaper returns it), or held
			}
			if n == limit {
				res.More = true
				return errLimit
			}
			n++
			res.Released[q]++
			return requeue(tx, mc, q, id, &r)
		})
		if err != nil && err != errLimit {
			return err
		}
		if !res.More {
			if _, err := s.recoverBatches(tx, mc, limit-n, &res); err != nil {
				return err
			}
		}
		return mc.flush()
	})
	if err != nil || res.More {
		o.mu.Lock()
		o.clean = false
		o.mu.Unlock()
	}
	if err != nil {
		return broker.RecoverResult{}, fmt.Errorf("recover leases: %w", err)
	}
	s.emit(pushEvents(res.Released)...)
	return res, nil
}
