package redisstore

import (
	"context"
	"fmt"

	"github.com/tabreduce/tabreduce/server/broker"
)

// FlushPublic deletes every public queue and every key/value entry. On a
// shared store this is one script per queue and per thousand keys, not one
// transaction: a push made by another process while the flush runs may
// survive it. Internal queues and records are left whole.
func (s *Store) FlushPublic(ctx context.Context) (broker.FlushResult, error) {
	var res broker.FlushResult
	if err := s.check(ctx); err != nil {
		return res, err
	}
	names, err := s.client.ZRange(ctx, s.keys.queues(), 0, -1).Result()
	if err != nil {
		return res, fmt.Errorf("flush: %w", s.mapErr(err))
	}
	for _, q := range names {
		if broker.IsInternalQueue(q) {
			continue
		}
		existed, _, err := s.purge(ctx, q, "purge")
		if err != nil {
			return res, fmt.Errorf("flush: %w", err)
		}
		if existed {
			res.Queues++
		}
	}
	if res.Keys, err = s.KVDeletePrefix(ctx, ""); err != nil {
		return res, fmt.Errorf("flush: %w", err)
	}
	blob := s.origin + "\x00f"
	if err := s.client.Publish(ctx, s.keys.channel(), blob).Err(); err != nil {
		return res, fmt.Errorf("flush: %w", s.mapErr(err))
	}
	s.emitReply(blob)
	return res, nil
}
