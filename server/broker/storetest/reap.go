package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// reapCases pin down Reap: expired leases, dead-lettering, TTL and Limit.
func reapCases() []storeCase {
	cases := []storeCase{
		{"ExpiredLeasesReturnToHead", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			ls := lease(t, s, "q", 2, base)
			reapedNothing(t, reap(t, s, at(visibility-time.Nanosecond), manyAttempt))
			depth(t, s, "q", 1, 2)
			r := reap(t, s, at(visibility), manyAttempt) // Deadline <= Now
			equal(t, "Requeued[q]", r.Requeued["q"], 2)
			equal(t, "DeadLettered[q]", r.DeadLettered["q"], 0)
			depth(t, s, "q", 3, 0)
			for i, want := range []int{1, 1, 0} {
				m := take(t, s, "q", at(visibility))
				equal(t, "id taken after reap", m.ID, uint64(i+1))
				equal(t, fmt.Sprintf("Attempts of message %d", m.ID), m.Attempts, want)
			}
			sameSlice(t, "unknown acking reaped leases", ack(t, s, "q", leaseIDs(ls)...), leaseIDs(ls))
		}},
		{"RedeliveryInIDOrderAheadOfNew", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d", "e")
			lease(t, s, "q", 1, base)
			lease(t, s, "q", 2, at(time.Second))
			push(t, s, "q", at(2*time.Second), "f")
			equal(t, "Requeued[q]", reap(t, s, at(time.Hour), manyAttempt).Requeued["q"], 3)
			sameSlice(t, "taken after reap", drain(t, s, "q", at(time.Hour)), []string{"a", "b", "c", "d", "e", "f"})
		}},
		{"SpansQueues", func(t *testing.T, s broker.Store) {
			push(t, s, "a", base, "1", "2")
			push(t, s, "b", base, "1")
			lease(t, s, "a", 2, base)
			lease(t, s, "b", 1, base)
			r := reap(t, s, at(visibility), manyAttempt)
			equal(t, "Requeued[a]", r.Requeued["a"], 2)
			equal(t, "Requeued[b]", r.Requeued["b"], 1)
		}},
		{"TwiceDoesNothing", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			lease(t, s, "q", 1, base)
			equal(t, "Requeued[q] by the first reap", reap(t, s, at(visibility), manyAttempt).Requeued["q"], 1)
			reapedNothing(t, reap(t, s, at(visibility), manyAttempt))
			reapedNothing(t, reap(t, s, at(24*time.Hour), manyAttempt))
			depth(t, s, "q", 1, 0)
		}},
		{"ExtendedLeaseUntouched", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			ls := lease(t, s, "q", 2, base)
			_, err := s.LeaseExtend(t.Context(), "q", ls[1].ID, at(time.Hour))
			must(t, "LeaseExtend", err)
			equal(t, "Requeued[q]", reap(t, s, at(visibility), manyAttempt).Requeued["q"], 1)
			depth(t, s, "q", 1, 1)
			equal(t, "unknown acking the extended lease", len(ack(t, s, "q", ls[1].ID)), 0)
		}},
		{"BatchOfMixedOutcomes", func(t *testing.T, s broker.Store) {
			// One lease call of six, then each message goes its own way:
			// the reaper must return exactly those still leased until the
			// batch's deadline, each once, whatever the others did. a is
			// released and leased again at the batch's very instant.
			push(t, s, "q", base, "a", "b", "c", "d", "e", "f")
			ls := lease(t, s, "q", 6, base)
			sameSlice(t, "unknown acking d and e", ack(t, s, "q", ls[3].ID, ls[4].ID), nil)
			_, err := s.LeaseExtend(t.Context(), "q", ls[1].ID, at(time.Hour))
			must(t, "LeaseExtend of b", err)
			_, err = s.LeaseNack(t.Context(), broker.LeaseNackParams{Queue: "q", LeaseID: ls[2].ID, Now: base, Delay: 2 * visibility, Error: "later", MaxAttempts: manyAttempt})
			must(t, "LeaseNack of c with a delay", err)
			_, err = s.LeaseRelease(t.Context(), "q", []string{ls[0].ID})
			must(t, "LeaseRelease of a", err)
			again := lease(t, s, "q", 1, base)
			equal(t, "id leased again", again[0].Message.ID, uint64(1))
			r := reap(t, s, at(visibility), manyAttempt)
			equal(t, "Requeued[q] at the batch's deadline (a, f)", r.Requeued["q"], 2)
			sameSlice(t, "unknown acking a's lease after the reap", ack(t, s, "q", again[0].ID), []string{again[0].ID})
			depth(t, s, "q", 3, 1) // a, f back; c delayed; b leased
			reapedNothing(t, reap(t, s, at(visibility), manyAttempt))
			equal(t, "Requeued[q] at c's delay", reap(t, s, at(2*visibility), manyAttempt).Requeued["q"], 1)
			equal(t, "Requeued[q] at b's extended deadline", reap(t, s, at(time.Hour), manyAttempt).Requeued["q"], 1)
			reapedNothing(t, reap(t, s, at(24*time.Hour), manyAttempt))
			depth(t, s, "q", 4, 0)
			sameSlice(t, "taken after the reaps", drain(t, s, "q", at(24*time.Hour)), []string{"a", "b", "c", "f"})
		}},
		{"DropsExpiredMessages", func(t *testing.T, s broker.Store) {
			pushMessages(t, s, "q", base,
				broker.NewMessage{Value: []byte("a"), TTL: time.Minute},
				broker.NewMessage{Value: []byte("b"), TTL: 2 * time.Minute},
				broker.NewMessage{Value: []byte("c")},
			)
			equal(t, "Expired before any TTL", reap(t, s, at(time.Minute-time.Nanosecond), manyAttempt).Expired, 0)
			equal(t, "Expired at a's TTL", reap(t, s, at(time.Minute), manyAttempt).Expired, 1)
			equal(t, "Expired at b's TTL", reap(t, s, at(2*time.Minute), manyAttempt).Expired, 1)
			depth(t, s, "q", 1, 0)
			sameSlice(t, "taken after reaps", drain(t, s, "q", base), []string{"c"})
		}},
	}
	cases = append(cases, storeCase{"DeadLetterQueueKeepsItsExpiredLeases", func(t *testing.T, s broker.Store) {
		// An expired lease of a dead-letter queue returns to it, whatever
		// MaxAttempts says: there is no q.dead.dead.
		push(t, s, "q.dead", base, "a")
		lease(t, s, "q.dead", 1, base)
		r := reap(t, s, at(visibility), 1)
		equal(t, "Requeued[q.dead]", r.Requeued["q.dead"], 1)
		equal(t, "DeadLettered[q.dead]", r.DeadLettered["q.dead"], 0)
		depth(t, s, "q.dead", 1, 0)
		noQueue(t, s, "q.dead.dead")
	}})
	for _, prior := range []int{0, 2} {
		maxAttempts := prior + 1
		cases = append(cases, storeCase{fmt.Sprintf("DeadLettersAfter%dNacks", prior), func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			for range prior {
				nack(t, s, leaseOne(t, s, "q", base), base, "nacked", maxAttempts)
			}
			lease(t, s, "q", 1, base)
			r := reap(t, s, at(visibility), maxAttempts)
			equal(t, "DeadLettered[q]", r.DeadLettered["q"], 1)
			equal(t, "Requeued[q]", r.Requeued["q"], 0)
			depth(t, s, "q", 0, 0)
			equal(t, "DeadLettered total of q", info(t, s, "q").DeadLettered, 1)
			m := checkDead(t, s, "q", "a", maxAttempts)
			if e := strings.ToLower(m.Error); !strings.Contains(e, "lease") || !strings.Contains(e, "expir") {
				t.Errorf("dead message's Error = %q, want one that says the lease expired", m.Error)
			}
		}})
	}
	return append(cases, limitCases()...)
}

// limitCases check that Limit bounds each kind of Reap work and More says
// when there is more.
func limitCases() []storeCase {
	const n, limit = 5, 2
	leaseAll := func(t *testing.T, s broker.Store) {
		push(t, s, "q", base, "1", "2", "3", "4", "5")
		lease(t, s, "q", n, base)
	}
	kinds := []struct {
		name        string
		prepare     func(t *testing.T, s broker.Store)
		maxAttempts int
		done        func(r broker.ReapResult) int
	}{
		{"Leases", leaseAll, manyAttempt, func(r broker.ReapResult) int { return r.Requeued["q"] }},
		{"DeadLetters", leaseAll, 1, func(r broker.ReapResult) int { return r.DeadLettered["q"] }},
		{"TTLs", func(t *testing.T, s broker.Store) {
			msgs := make([]broker.NewMessage, n)
			for i := range msgs {
				msgs[i] = broker.NewMessage{Value: []byte{byte('1' + i)}, TTL: time.Second}
			}
			pushMessages(t, s, "q", base, msgs...)
		}, manyAttempt, func(r broker.ReapResult) int { return r.Expired }},
	}
	var cases []storeCase
	for _, k := range kinds {
		cases = append(cases, storeCase{"LimitBounds" + k.name, func(t *testing.T, s broker.Store) {
			k.prepare(t, s)
			for call, want := range []struct {
				done int
				more bool
			}{{2, true}, {2, true}, {1, false}, {0, false}} {
				r, err := s.Reap(t.Context(), broker.ReapParams{Now: at(time.Hour), MaxAttempts: k.maxAttempts, Limit: limit})
				must(t, "Reap", err)
				if k.done(r) != want.done || r.More != want.more {
					t.Errorf("Reap call %d with Limit %d of %d: done %d, More %v; want %d, %v (%+v)",
						call+1, limit, n, k.done(r), r.More, want.done, want.more, r)
				}
			}
		}})
	}
	return cases
}
