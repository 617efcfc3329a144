package redisstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Lease owners. The owner registry holds each owner with the time it is
// alive until (its heartbeat's Until, in µs; 0 once it stopped or if it
// never said), and each owner has the set of queues it leased from,
// hinted before every lease. An owner is gone when its time has passed:
// any process may then return its leases, queue by queue, and forget it.

// OwnerHeartbeat records that an owner is alive until p.Until, or with a
// zero Until that it stopped.
func (s *Store) OwnerHeartbeat(ctx context.Context, p broker.OwnerParams) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	score := 0.0
	if !p.Until.IsZero() {
		score = float64(p.Until.UnixMicro())
	}
	var kept *redis.IntCmd
	_, err := s.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.ZAdd(ctx, s.keys.owners(), redis.Z{Score: score, Member: p.Owner})
		kept = pl.Exists(ctx, s.keys.ownerQueues(p.Owner))
		return nil
	})
	if err != nil {
		return s.mapErr(err)
	}
	s.leases.heartbeat(p.Owner, p.Until, kept.Val() == 1)
	return nil
}

// LeaseRecover returns the leases of owners that are gone to their queues.
func (s *Store) LeaseRecover(ctx context.Context, p broker.LeaseRecoverParams) (broker.RecoverResult, error) {
	res := broker.RecoverResult{Released: map[string]int{}}
	if err := s.check(ctx); err != nil {
		return res, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	now := timeArgs(p.Now)
	gone, err := s.client.ZRangeByScore(ctx, s.keys.owners(), &redis.ZRangeBy{Min: "-inf", Max: "(" + now.us}).Result()
	if err != nil {
		return res, fmt.Errorf("recover leases: %w", s.mapErr(err))
	}
	left := limit
	for _, owner := range gone {
		more, err := s.recoverOwner(ctx, owner, now, &left, &res)
		if err != nil {
			return res, fmt.Errorf("recover leases of %s: %w", owner, err)
		}
		if more {
			res.More = true
			break
		}
	}
	return res, nil
}

// recoverOwner returns one gone owner's leases, queue by queue, until
// *left runs out (more), and forgets the owner once they all are back.
func (s *Store) recoverOwner(ctx context.Context, owner string, now nowArgs, left *int, res *broker.RecoverResult) (more bool, err error) {
	queues, err := s.client.SMembers(ctx, s.keys.ownerQueues(owner)).Result()
	if err != nil {
		return false, s.mapErr(err)
	}
	sort.Strings(queues)
	for _, q := range queues {
		if *left <= 0 {
			return true, nil
		}
		v, err := s.run(ctx, scriptRecover, now, s.keys.queue(q), q, owner, *left)
		if err != nil {
			return false, err
		}
		a, err := asSlice(v, 3, "recover reply")
		if err != nil {
			return false, err
		}
		s.emitReply(a[0])
		n, err1 := asCount(a[1], "recover reply")
		m, err2 := asCount(a[2], "recover reply")
		if err1 != nil || err2 != nil {
			return false, corrupt("recover reply", v)
		}
		if n > 0 {
			res.Released[q] += int(n)
		}
		*left -= int(n)
		if m == 1 {
			return true, nil
		}
	}
	_, err = s.run(ctx, scriptOwnerDone, now, []string{s.keys.owners(), s.keys.ownerQueues(owner)}, owner)
	return false, err
}
