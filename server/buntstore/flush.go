package buntstore

import (
	"context"
	"fmt"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// FlushPublic deletes every public queue and every key/value entry in one
// transaction; internal queues (names with '/') and records stay.
func (s *Store) FlushPublic(ctx context.Context) (broker.FlushResult, error) {
	var res broker.FlushResult
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		res = broker.FlushResult{}
		keys, _, err := scan(tx, metaPrefix, prefixEnd(metaPrefix), 0)
		if err != nil {
			return err
		}
		for _, k := range keys {
			q := k[len(metaPrefix):]
			if broker.IsInternalQueue(q) {
				continue
			}
			if err := purgeTx(tx, q); err != nil {
				return err
			}
			res.Queues++
		}
		res.Keys, err = deletePrefixTx(tx, kvPrefix)
		return err
	})
	if err != nil {
		return broker.FlushResult{}, fmt.Errorf("flush: %w", err)
	}
	s.emit(broker.Event{Kind: broker.EventFlush})
	return res, nil
}
