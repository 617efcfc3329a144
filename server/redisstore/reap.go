package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Reap returns expired leases to their queues, makes delayed messages
// deliverable and drops expired ones. The queues to visit are those of the
// due registry whose score (their earliest deadline or expiry, as hinted)
// has come; each visit is one script on the queue's slot. Any process may
// reap; two reaping at once each find the other's work done.
func (s *Store) Reap(ctx context.Context, p broker.ReapParams) (broker.ReapResult, error) {
	res := broker.ReapResult{Requeued: map[string]int{}, DeadLettered: map[string]int{}}
	if err := s.check(ctx); err != nil {
		return res, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	now := timeArgs(p.Now)
	queues, err := s.client.ZRangeByScore(ctx, s.keys.due(), &redis.ZRangeBy{Min: "-inf", Max: now.us, Count: int64(limit) + 1}).Result()
	if err != nil {
		return res, fmt.Errorf("reap: %w", s.mapErr(err))
	}
	if len(queues) > limit {
		queues, res.More = queues[:limit], true
	}
	done := 0
	for _, q := range queues {
		if done >= limit {
			res.More = true
			break
		}
		n, more, err := s.reapQueue(ctx, q, p, now, limit-done, &res)
		if err != nil {
			return res, fmt.Errorf("reap %s: %w", q, err)
		}
		done += n
		res.More = res.More || more
	}
	s.maintain(ctx, p.Now)
	return res, nil
}

// deadLetterAt is the attempts at which a message of queue is
// dead-lettered: maxAttempts, except for a dead-letter queue, whose
// messages never are (0 tells the scripts so).
func deadLetterAt(queue string, maxAttempts int) int {
	if _, ok := broker.DeadLetterOf(queue); ok {
		return 0
	}
	return maxAttempts
}

// reapQueue reaps one queue, then sets its due score to what is next.
func (s *Store) reapQueue(ctx context.Context, q string, p broker.ReapParams, now nowArgs, limit int, res *broker.ReapResult) (int, bool, error) {
	dq := broker.DeadQueue(q)
	maxAttempts := deadLetterAt(q, p.MaxAttempts)
	if maxAttempts > 0 {
		var h hints
		s.hintQueue(&h, dq)
		if err := s.writeHints(ctx, &h); err != nil {
			return 0, false, err
		}
	}
	keys := append(s.keys.queue(q), s.keys.queue(dq)...)
	v, err := s.run(ctx, scriptReap, now, keys, q, dq, maxAttempts, limit)
	if err != nil {
		return 0, false, err
	}
	a, err := asSlice(v, 6, "reap reply")
	if err != nil {
		return 0, false, err
	}
	s.emitReply(a[0])
	var counts [4]int64
	for i := range counts {
		if counts[i], err = asCount(a[1+i], "reap reply"); err != nil {
			return 0, false, err
		}
	}
	next, err := asString(a[5], "reap reply")
	if err != nil {
		return 0, false, err
	}
	if counts[0] > 0 {
		res.Requeued[q] += int(counts[0])
	}
	if counts[1] > 0 {
		res.DeadLettered[q] += int(counts[1])
	}
	res.Expired += int(counts[2])
	more := counts[3] == 1
	if !more {
		if err := s.setDue(ctx, q, next); err != nil {
			return 0, false, err
		}
	}
	return int(counts[0] + counts[1] + counts[2]), more, nil
}

// setDue sets a queue's due score to next ("" for nothing due), then reads
// the queue's earliest time again and lowers the score to it: a lease
// taken between the reap and the write hinted its deadline before the
// write, which may have raised the score past it; the second read sees it.
func (s *Store) setDue(ctx context.Context, q, next string) error {
	var err error
	if next == "" {
		err = s.client.ZRem(ctx, s.keys.due(), q).Err()
	} else {
		err = s.client.ZAdd(ctx, s.keys.due(), redis.Z{Score: parseScore(next), Member: q}).Err()
	}
	if err != nil {
		return s.mapErr(err)
	}
	v, err := s.run(ctx, scriptNextDue, nowArgs{}, s.keys.queue(q))
	if err != nil {
		return err
	}
	again, err := asString(v, "next due")
	if err != nil || again == "" {
		return err
	}
	return s.mapErr(s.client.ZAddLT(ctx, s.keys.due(), redis.Z{Score: parseScore(again), Member: q}).Err())
}

func parseScore(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0 // due at once: the next reap looks again
	}
	return f
}

// maintenanceEvery is how often one Store's Reap also tidies the
// registries and completes stale outbox entries.
const maintenanceEvery = 5 * time.Second

// maintain runs the janitor and the outbox recovery when they are due.
// Their errors are logged: they retry on the next round.
func (s *Store) maintain(ctx context.Context, now time.Time) {
	if !s.maint.due(time.Now(), maintenanceEvery) {
		return
	}
	if err := s.recoverOutboxes(ctx); err != nil && ctx.Err() == nil && !s.isClosed() {
		s.log.Error("complete outbox entries", "err", err)
	}
	if err := s.reapKV(ctx); err != nil && ctx.Err() == nil && !s.isClosed() {
		s.log.Error("drop expired key/values", "err", err)
	}
	if err := s.tidyRegistries(ctx); err != nil && ctx.Err() == nil && !s.isClosed() {
		s.log.Error("tidy registries", "err", err)
	}
}

// reapKV drops key/values whose TTL passed, so that their index entries
// do not pile up.
func (s *Store) reapKV(ctx context.Context) error {
	for range 100 {
		v, err := s.run(ctx, scriptKVReap, nowArgs{}, s.keys.kvIndex(), s.keys.kvValuePrefix(), 1000)
		if err != nil {
			return err
		}
		if n, _ := asInt(v, "kv reap"); n < 1000 {
			return nil
		}
	}
	return nil
}
