package redisstore

import (
	"context"
	"sync"
	"time"
)

// Hints. Some facts span slots: which queues exist (QueueList), which have
// a lease deadline or TTL coming (Reap), which queues an owner leased from
// (LeaseRecover), which groups hold records or outbox entries. They live in
// registries in the {reg} slot, and a registry entry is written before
// the change it announces, by a script of its own: a crash between the two
// leaves an entry too many (the janitor and the reaper drop those), never
// a queue, lease or record nobody can find.

// hints collects the registry entries one operation needs.
type hints struct {
	ops   []any
	owner string
}

func (h *hints) queue(name string) { h.ops = append(h.ops, "q", name) }

// due says name has a deadline or expiry at the nanosecond time at.
func (h *hints) due(name string, at int64) { h.ops = append(h.ops, "d", name, usScore(at)) }

// lease says owner may hold leases of name.
func (h *hints) lease(owner, name string) {
	h.owner = owner
	h.ops = append(h.ops, "o", owner, name)
}

func (h *hints) recordGroup(group string) { h.ops = append(h.ops, "e", group) }
func (h *hints) outboxGroup(group string) { h.ops = append(h.ops, "t", group) }

// hintTTL is how long this process trusts that a queue or group hint it
// wrote is still there, and skips writing it again. The janitor never
// drops an entry hinted within janitorGrace, which is longer.
const (
	hintTTL      = 10 * time.Second
	janitorGrace = 60 * time.Second
	hintCacheMax = 10000
)

// hintCache remembers the queue and group hints this process wrote lately.
type hintCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// fresh reports whether key was hinted within hintTTL; if not, it records
// it as hinted now (the caller writes it).
func (c *hintCache) fresh(key string) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.seen[key]; ok && now.Sub(t) < hintTTL {
		return true
	}
	if c.seen == nil || len(c.seen) >= hintCacheMax {
		c.seen = map[string]time.Time{}
	}
	c.seen[key] = now
	return false
}

// forget drops key, so that the next operation hints it again.
func (c *hintCache) forget(key string) {
	c.mu.Lock()
	delete(c.seen, key)
	c.mu.Unlock()
}

// hintQueue adds a queue's registry entry unless this process wrote it
// lately.
func (s *Store) hintQueue(h *hints, name string) {
	if !s.hinted.fresh("q" + name) {
		h.queue(name)
	}
}

// hintRecordGroup adds a record group's registry entry unless written
// lately.
func (s *Store) hintRecordGroup(h *hints, group string) {
	if !s.hinted.fresh("e" + group) {
		h.recordGroup(group)
	}
}

// writeHints writes the hints, before the change they announce.
func (s *Store) writeHints(ctx context.Context, h *hints) error {
	if len(h.ops) == 0 {
		return nil
	}
	k := s.keys
	keys := []string{k.queues(), k.due(), k.owners(), k.recordGroups(), k.outboxGroups(), k.ownerQueues(h.owner)}
	_, err := s.run(ctx, scriptHint, nowArgs{}, keys, h.ops...)
	return err
}
