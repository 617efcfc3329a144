package buntstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// KVSwap checks every entry's condition and, if all hold, applies every
// change, in one transaction.
func (s *Store) KVSwap(ctx context.Context, p broker.KVSwapParams) (broker.KVSwapResult, error) {
	res := broker.KVSwapResult{Prev: make([]*broker.KVValue, len(p.Entries))}
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		ok := true
		for i, e := range p.Entries {
			v, err := kvGet(tx, e.Key)
			if err != nil {
				return err
			}
			res.Prev[i] = v
			ok = ok && kvCondHolds(e, v)
		}
		if !ok {
			return nil
		}
		for _, e := range p.Entries {
			if err := kvApply(tx, e); err != nil {
				return err
			}
		}
		res.Applied = true
		return nil
	})
	if err != nil {
		return broker.KVSwapResult{}, err
	}
	return res, nil
}

func kvCondHolds(e broker.KVSwapEntry, v *broker.KVValue) bool {
	switch e.If {
	case broker.KVAlways:
		return true
	case broker.KVIfAbsent:
		return v == nil
	case broker.KVIfPresent:
		return v != nil
	case broker.KVIfEqual:
		return v != nil && v.Raw == e.Equal.Raw && bytes.Equal(v.Data, e.Equal.Data)
	}
	return false
}

// kvApply makes one entry's change.
func kvApply(tx *buntdb.Tx, e broker.KVSwapEntry) error {
	key := kvPrefix + e.Key
	switch e.Op {
	case broker.KVCheck:
		return nil
	case broker.KVRemove:
		if _, err := tx.Delete(key); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
			return fmt.Errorf("kv delete %s: %w", e.Key, err)
		}
		return nil
	case broker.KVPut:
		ttl := e.TTL
		if e.KeepTTL {
			ttl = kvRemaining(tx, key)
		}
		return kvSetTx(tx, []broker.KVEntry{{Key: e.Key, Value: e.Value, TTL: ttl}})
	case broker.KVExpire:
		cur, err := kvGet(tx, e.Key)
		if err != nil || cur == nil {
			return err
		}
		return kvSetTx(tx, []broker.KVEntry{{Key: e.Key, Value: *cur, TTL: e.TTL}})
	}
	return fmt.Errorf("kv swap %s: unknown op %d", e.Key, e.Op)
}

// kvRemaining is a key's time left to live, zero when it never expires or
// does not exist.
func kvRemaining(tx *buntdb.Tx, key string) time.Duration {
	ttl, err := tx.TTL(key)
	if err != nil || ttl < 0 {
		return 0
	}
	return max(ttl, time.Nanosecond)
}
