package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maintenance rate-limits the janitor and the outbox recovery of one
// Store.
type maintenance struct {
	mu   sync.Mutex
	last time.Time
}

// due reports whether every has passed since the last round, and starts
// a round if so.
func (m *maintenance) due(now time.Time, every time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.last) < every {
		return false
	}
	m.last = now
	return true
}

// tidyRegistries drops registry entries that no longer name anything: a
// queue that was purged (or only hinted), a record group whose records
// were deleted, a group whose outbox emptied. An entry hinted within
// janitorGrace is kept (a process may be about to use it without writing
// it again, hintTTL); after a drop the thing is looked at once more, and
// its entry written back if it came to exist meanwhile.
func (s *Store) tidyRegistries(ctx context.Context) error {
	k := s.keys
	if err := s.tidy(ctx, k.queues(), func(p redis.Pipeliner, q string) *redis.IntCmd {
		return p.Exists(ctx, k.meta(q))
	}); err != nil {
		return err
	}
	if err := s.tidy(ctx, k.recordGroups(), func(p redis.Pipeliner, g string) *redis.IntCmd {
		return p.ZCard(ctx, k.records(g)[1])
	}); err != nil {
		return err
	}
	return s.tidy(ctx, k.outboxGroups(), func(p redis.Pipeliner, g string) *redis.IntCmd {
		return p.ZCard(ctx, outbox(k.tag(g))[1])
	})
}

// tidy checks the members of one registry hinted before the grace period
// with size (zero: nothing there) and drops the empty ones.
func (s *Store) tidy(ctx context.Context, registry string, size func(redis.Pipeliner, string) *redis.IntCmd) error {
	cutoff := time.Now().Add(-janitorGrace).UnixMilli()
	old, err := s.client.ZRangeByScore(ctx, registry, &redis.ZRangeBy{Min: "-inf", Max: "(" + itoa(cutoff), Count: 1000}).Result()
	if err != nil || len(old) == 0 {
		return s.mapErr(err)
	}
	empty, err := s.sizes(ctx, old, size, false)
	if err != nil || len(empty) == 0 {
		return err
	}
	args := []any{janitorGrace.Milliseconds()}
	for _, n := range empty {
		args = append(args, n)
	}
	v, err := s.run(ctx, scriptUnhint, nowArgs{}, []string{registry}, args...)
	if err != nil {
		return err
	}
	dropped, err := asSlice(v, 0, "unhint reply")
	if err != nil {
		return err
	}
	names := make([]string, 0, len(dropped))
	for _, d := range dropped {
		if n, ok := d.(string); ok {
			names = append(names, n)
		}
	}
	// Look again: something made between the check and the drop gets its
	// entry back.
	back, err := s.sizes(ctx, names, size, true)
	if err != nil || len(back) == 0 {
		return err
	}
	zs := make([]redis.Z, len(back))
	for i, n := range back {
		zs[i] = redis.Z{Score: float64(time.Now().UnixMilli()), Member: n}
	}
	return s.mapErr(s.client.ZAdd(ctx, registry, zs...).Err())
}

// sizes returns the names whose size is zero (or, with nonEmpty, is not).
func (s *Store) sizes(ctx context.Context, names []string, size func(redis.Pipeliner, string) *redis.IntCmd, nonEmpty bool) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.IntCmd, len(names))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = size(p, n)
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	var out []string
	for i, c := range cmds {
		if (c.Val() > 0) == nonEmpty {
			out = append(out, names[i])
		}
	}
	return out, nil
}
