package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// nackCases pin down LeaseNack: redelivery, delay and dead-lettering.
func nackCases() []storeCase {
	cases := []storeCase{
		{"ReturnsToHead", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			l := leaseOne(t, s, "q", base)
			push(t, s, "q", base, "c")
			equal(t, "deadLettered", nack(t, s, l, base, "boom", manyAttempt), false)
			depth(t, s, "q", 3, 0)
			m := take(t, s, "q", base) // at once: Delay 0
			equal(t, "id of the nacked message", m.ID, 1)
			equal(t, "Attempts after a nack", m.Attempts, 1)
			equal(t, "Error after a nack", m.Error, "boom")
			sameSlice(t, "taken after it", drain(t, s, "q", base), []string{"b", "c"})
		}},
		{"Unknown", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			_, err := s.LeaseNack(t.Context(), broker.LeaseNackParams{Queue: "q", LeaseID: "nosuch", MaxAttempts: manyAttempt, Now: base})
			isErr(t, "LeaseNack of an unknown lease", err, broker.ErrLeaseNotFound)
		}},
		// A nacked message with a Delay is held back until a Reap runs with
		// Now >= the nack's Now + Delay; it then stands at the head of its
		// queue. While held it counts in Length, not in InFlight.
		{"DelayHoldsUntilReap", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			const delay = 30 * time.Second
			nackLater(t, s, leaseOne(t, s, "q", base), base, delay, "later")
			depth(t, s, "q", 3, 0)
			equal(t, "peeked while a is held", peek(t, s, "q", at(delay/2)).ID, 2)
			reap(t, s, at(delay-time.Nanosecond), manyAttempt)
			equal(t, "peeked after a Reap before the delay", peek(t, s, "q", at(delay-time.Nanosecond)).ID, 2)
			reap(t, s, at(delay), manyAttempt)
			m := take(t, s, "q", at(delay))
			equal(t, "taken after a Reap at the delay: id", m.ID, 1)
			equal(t, "Attempts", m.Attempts, 1)
			equal(t, "Error", m.Error, "later")
			sameSlice(t, "taken after it", drain(t, s, "q", at(delay)), []string{"b", "c"})
		}},
		{"DelayedCanBeDeleted", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			nackLater(t, s, leaseOne(t, s, "q", base), base, time.Minute, "later")
			must(t, "MessageDelete of a delayed message", s.MessageDelete(t.Context(), "q", 1))
			reapedNothing(t, reap(t, s, at(time.Hour), manyAttempt))
			wantEmpty(t, s, "q", at(time.Hour))
		}},
		{"DeadLetterIDsAreTheDeadQueues", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			ls := lease(t, s, "q", 3, base)
			nack(t, s, ls[2], base, "c failed", 1)
			nack(t, s, ls[0], base, "a failed", 1)
			dq := broker.DeadQueue("q")
			equal(t, "dead id of c", take(t, s, dq, base).ID, 1)
			equal(t, "dead id of a", take(t, s, dq, base).ID, 2)
			equal(t, "DeadLettered of q", info(t, s, "q").DeadLettered, 2)
		}},
	}
	for _, delay := range []time.Duration{0, time.Minute} {
		cases = append(cases, storeCase{fmt.Sprintf("KillsTheLeaseDelay%v", delay), func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			l := leaseOne(t, s, "q", base)
			nackLater(t, s, l, base, delay, "boom")
			sameSlice(t, "unknown acking a nacked lease", ack(t, s, "q", l.ID), []string{l.ID})
			_, err := s.LeaseNack(t.Context(), broker.LeaseNackParams{Queue: "q", LeaseID: l.ID, MaxAttempts: manyAttempt, Now: base})
			isErr(t, "LeaseNack twice", err, broker.ErrLeaseNotFound)
			_, err = s.LeaseExtend(t.Context(), "q", l.ID, at(time.Hour))
			isErr(t, "LeaseExtend of a nacked lease", err, broker.ErrLeaseNotFound)
			reap(t, s, at(delay), manyAttempt)
			m := take(t, s, "q", at(delay))
			equal(t, "Attempts after one nack", m.Attempts, 1)
		}})
	}
	cases = append(cases, storeCase{"DeadLetterQueueKeepsItsMessages", func(t *testing.T, s broker.Store) {
		// A message that fails in a dead-letter queue stays there: there is
		// no q.dead.dead.
		push(t, s, "q.dead", base, "a")
		for i := 1; i <= 3; i++ {
			equal(t, fmt.Sprintf("deadLettered after nack %d at MaxAttempts 1", i), nack(t, s, leaseOne(t, s, "q.dead", base), base, "again", 1), false)
		}
		depth(t, s, "q.dead", 1, 0)
		equal(t, "DeadLettered of q.dead", info(t, s, "q.dead").DeadLettered, 0)
		noQueue(t, s, "q.dead.dead")
		equal(t, "Attempts", take(t, s, "q.dead", base).Attempts, 3)
	}})
	for _, maxAttempts := range []int{1, 3} {
		cases = append(cases, storeCase{fmt.Sprintf("DeadLettersAtMaxAttempts%d", maxAttempts), func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			for i := 1; i <= maxAttempts; i++ {
				l := leaseOne(t, s, "q", base)
				equal(t, "leased id", l.Message.ID, 1)
				dead := nack(t, s, l, base, fmt.Sprintf("failure %d", i), maxAttempts)
				equal(t, fmt.Sprintf("deadLettered after nack %d of %d", i, maxAttempts), dead, i == maxAttempts)
			}
			depth(t, s, "q", 1, 0)
			equal(t, "DeadLettered of q", info(t, s, "q").DeadLettered, 1)
			m := checkDead(t, s, "q", "a", maxAttempts)
			equal(t, "dead message's Error", m.Error, fmt.Sprintf("failure %d", maxAttempts))
		}})
	}
	return cases
}

// nackLater nacks a lease with a delay (and no dead-lettering).
func nackLater(t *testing.T, s broker.Store, l broker.Lease, now time.Time, delay time.Duration, msg string) {
	t.Helper()
	dead, err := s.LeaseNack(t.Context(), broker.LeaseNackParams{
		Queue: l.Message.Queue, LeaseID: l.ID, Delay: delay, Error: msg, MaxAttempts: manyAttempt, Now: now,
	})
	must(t, fmt.Sprintf("LeaseNack %s with Delay %v", l.ID, delay), err)
	equal(t, "deadLettered by a nack under MaxAttempts", dead, false)
}

// checkDead checks the dead-letter queue of queue: it holds one message,
// value with attempts, and returns it.
func checkDead(t *testing.T, s broker.Store, queue, value string, attempts int) broker.Message {
	t.Helper()
	dq := broker.DeadQueue(queue)
	depth(t, s, dq, 1, 0)
	m := peek(t, s, dq, base)
	equal(t, "dead message's Queue", m.Queue, dq)
	equal(t, "dead message's id", m.ID, 1)
	sameBytes(t, "dead message's Value", m.Value, []byte(value))
	equal(t, "dead message's Attempts", m.Attempts, attempts)
	return m
}
