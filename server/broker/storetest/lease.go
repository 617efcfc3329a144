package storetest

import (
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// leaseCases pin down QueueLease, LeaseExtend and LeaseRecover.
func leaseCases() []storeCase {
	return []storeCase{
		{"LeasesOldestN", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d", "e")
			ls := lease(t, s, "q", 3, base)
			sameSlice(t, "leased ids", leasedIDs(ls), []uint64{1, 2, 3})
			for _, l := range ls {
				sameTime(t, "Deadline", l.Deadline, at(visibility))
				equal(t, "leased Count", l.Message.Count, 1)
				equal(t, "leased Queue", l.Message.Queue, "q")
			}
			distinct(t, leaseIDs(ls))
			depth(t, s, "q", 2, 3)
		}},
		{"LeasesFewerThanN", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			equal(t, "leases when 2 of 5 are there", len(lease(t, s, "q", 5, base)), 2)
			depth(t, s, "q", 0, 2)
		}},
		{"EmptyQueueLeasesNothing", func(t *testing.T, s broker.Store) {
			equal(t, "leases of an unknown queue", len(lease(t, s, "nosuch", 3, base)), 0)
			push(t, s, "q", base, "a")
			take(t, s, "q", base)
			equal(t, "leases of an emptied queue", len(lease(t, s, "q", 3, base)), 0)
		}},
		{"LeasedMessagesAreHidden", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			equal(t, "first lease", leaseOne(t, s, "q", base).Message.ID, 1)
			equal(t, "peek beside a lease", peek(t, s, "q", base).ID, 2)
			equal(t, "take beside a lease", take(t, s, "q", base).ID, 2)
			equal(t, "leases when the only message is leased", len(lease(t, s, "q", 1, base)), 0)
			wantEmpty(t, s, "q", base)
		}},
		{"LeaseIDsAreUnique", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d", "e", "f")
			var all []string
			for range 3 {
				all = append(all, leaseIDs(lease(t, s, "q", 2, base))...)
			}
			equal(t, "leases", len(all), 6)
			distinct(t, all)
		}},
		{"CountCountsPeeksAndLeases", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			peek(t, s, "q", base)
			equal(t, "Count after a peek and a lease", leaseOne(t, s, "q", base).Message.Count, 2)
		}},
		{"ExtendMovesDeadline", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			ls := lease(t, s, "q", 2, base)
			later := at(10 * time.Minute)
			l, err := s.LeaseExtend(t.Context(), "q", ls[0].ID, later)
			must(t, "LeaseExtend", err)
			equal(t, "extended lease ID", l.ID, ls[0].ID)
			equal(t, "extended message id", l.Message.ID, ls[0].Message.ID)
			sameTime(t, "extended Deadline", l.Deadline, later)

			r := reap(t, s, at(visibility), manyAttempt)
			equal(t, "requeued at the old deadline (only the unextended lease)", r.Requeued["q"], 1)
			depth(t, s, "q", 1, 1)
			reapedNothing(t, reap(t, s, later.Add(-time.Nanosecond), manyAttempt))
			equal(t, "requeued at the new deadline", reap(t, s, later, manyAttempt).Requeued["q"], 1)
			depth(t, s, "q", 2, 0)
		}},
		{"ExtendUnknown", func(t *testing.T, s broker.Store) {
			_, err := s.LeaseExtend(t.Context(), "q", "nosuch", at(time.Hour))
			isErr(t, "LeaseExtend of an unknown lease", err, broker.ErrLeaseNotFound)
			push(t, s, "q", base, "a")
			l := leaseOne(t, s, "q", base)
			ack(t, s, "q", l.ID)
			_, err = s.LeaseExtend(t.Context(), "q", l.ID, at(time.Hour))
			isErr(t, "LeaseExtend of an acked lease", err, broker.ErrLeaseNotFound)
		}},
		// A lease taken by an owner that never said it was alive comes back
		// at the first recovery, its attempts unchanged.
		{"RecoverReleasesUnknownOwners", func(t *testing.T, s broker.Store) {
			push(t, s, "a", base, "x", "y", "z")
			nack(t, s, leaseOne(t, s, "a", base), base, "boom", manyAttempt)
			held := lease(t, s, "a", 2, base) // x (Attempts 1) and y
			push(t, s, "b", base, "w")
			held = append(held, leaseOne(t, s, "b", base))

			got := recoverAt(t, s, base)
			equal(t, "released from a", got["a"], 2)
			equal(t, "released from b", got["b"], 1)
			depth(t, s, "a", 3, 0)
			depth(t, s, "b", 1, 0)
			for _, l := range held {
				sameSlice(t, "unknown after acking a released lease", ack(t, s, l.Message.Queue, l.ID), []string{l.ID})
			}
			attempts := map[string]int{}
			for range 3 {
				m := take(t, s, "a", base)
				attempts[string(m.Value)] = m.Attempts
			}
			equal(t, "x's Attempts after release", attempts["x"], 1)
			equal(t, "y's Attempts after release", attempts["y"], 0)
			equal(t, "z's Attempts after release", attempts["z"], 0)
			sameSlice(t, "taken from b", drain(t, s, "b", base), []string{"w"})
		}},
		{"RecoverWithNothingInFlight", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			equal(t, "released", len(recoverAt(t, s, base)), 0)
			depth(t, s, "q", 1, 0)
		}},
	}
}

// ackCases pin down LeaseAck.
func ackCases() []storeCase {
	return []storeCase{
		{"AckDeletes", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			ls := lease(t, s, "q", 3, base)
			equal(t, "unknown acking two live leases", len(ack(t, s, "q", ls[0].ID, ls[1].ID)), 0)
			depth(t, s, "q", 0, 1)
			equal(t, "Acked", info(t, s, "q").Acked, 2)
			equal(t, "unknown acking the third", len(ack(t, s, "q", ls[2].ID)), 0)
			qi := info(t, s, "q")
			equal(t, "Acked", qi.Acked, 3)
			equal(t, "InFlight", qi.InFlight, 0)
			wantEmpty(t, s, "q", at(time.Hour))
			reapedNothing(t, reap(t, s, at(time.Hour), manyAttempt))
		}},
		{"UnknownReportedKnownAcked", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			ls := lease(t, s, "q", 2, base)
			unknown := ack(t, s, "q", ls[0].ID, "nosuch", ls[1].ID)
			sameSlice(t, "unknown", unknown, []string{"nosuch"})
			qi := info(t, s, "q")
			equal(t, "Acked", qi.Acked, 2)
			equal(t, "InFlight", qi.InFlight, 0)
		}},
		{"AckTwice", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			l := leaseOne(t, s, "q", base)
			equal(t, "unknown on the first ack", len(ack(t, s, "q", l.ID)), 0)
			sameSlice(t, "unknown on the second ack", ack(t, s, "q", l.ID), []string{l.ID})
			equal(t, "Acked", info(t, s, "q").Acked, 1)
		}},
		{"AckAfterReap", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			l := leaseOne(t, s, "q", base)
			reap(t, s, at(visibility), manyAttempt)
			sameSlice(t, "unknown acking a reaped lease", ack(t, s, "q", l.ID), []string{l.ID})
			depth(t, s, "q", 1, 0)
		}},
	}
}

// distinct reports repeated or empty lease ids.
func distinct(t *testing.T, leaseIDs []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range leaseIDs {
		if id == "" || seen[id] {
			t.Errorf("lease id %q is empty or repeated in %q; want distinct non-empty ids", id, leaseIDs)
		}
		seen[id] = true
	}
}
