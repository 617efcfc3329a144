package redisstore

import (
	"context"
	"time"
)

// LeaveForeign makes Commit stop after its primary scripts, as a process
// that crashed right after them would.
func (s *Store) LeaveForeign(leave bool) { s.leaveForeign = leave }

// SetOutboxGrace sets how old an outbox entry must be for maintenance.
func (s *Store) SetOutboxGrace(d time.Duration) { s.outboxGrace = d }

// Maintain runs the maintenance round now.
func (s *Store) Maintain(ctx context.Context) {
	s.maint.mu.Lock()
	s.maint.last = time.Time{}
	s.maint.mu.Unlock()
	s.maintain(ctx, time.Now())
}

// QueueKeys are the keys of a queue.
func QueueKeys(s *Store, q string) []string { return s.keys.queue(q) }

// SetPresenceTTL sets how long the members of the relays made after it
// count without renewal.
func (s *Store) SetPresenceTTL(d time.Duration) { s.presenceTTL = d }

// Crash stops a relay as a crash would: nothing withdrawn.
func (r *Relay) Crash() { r.stop() }
