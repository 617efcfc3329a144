package storetest

import (
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// leasedTogetherCases pin down the leases of one QueueLease call taken
// apart: each lease of a batch answers for itself whatever is done to the
// others (a store may keep a batch as one record and break it up).
func leasedTogetherCases() []storeCase {
	return []storeCase{
		{"AckedInParts", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d", "e", "f")
			ls := lease(t, s, "q", 6, base)
			sameSlice(t, "unknown of the first three", ack(t, s, "q", leaseIDs(ls[:3])...), []string{})
			depth(t, s, "q", 0, 3)
			sameSlice(t, "unknown of the fourth", ack(t, s, "q", ls[3].ID), []string{})
			depth(t, s, "q", 0, 2)
			sameSlice(t, "unknown of the rest, the fourth again among them",
				ack(t, s, "q", ls[4].ID, ls[3].ID, ls[5].ID, ls[5].ID), []string{ls[3].ID, ls[5].ID})
			depth(t, s, "q", 0, 0)
			reapedNothing(t, reap(t, s, at(2*visibility), manyAttempt))
			wantEmpty(t, s, "q", at(2*visibility))
		}},
		{"EachChangedAlone", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d", "e")
			ls := lease(t, s, "q", 5, base)
			nack(t, s, ls[1], base, "failed", manyAttempt)
			_, err := s.LeaseExtend(t.Context(), "q", ls[2].ID, at(3*visibility))
			must(t, "LeaseExtend of the third", err)
			unknown, err := s.LeaseRelease(t.Context(), "q", []string{ls[3].ID})
			must(t, "LeaseRelease of the fourth", err)
			sameSlice(t, "unknown released", unknown, []string{})
			depth(t, s, "q", 2, 3)
			sameSlice(t, "unknown of the first and last", ack(t, s, "q", ls[0].ID, ls[4].ID), []string{})
			reapedNothing(t, reap(t, s, at(2*visibility), manyAttempt))
			sameSlice(t, "taken", drain(t, s, "q", at(2*visibility)), []string{"b", "d"})
			equal(t, "requeued once the extended lease ends", reap(t, s, at(4*visibility), manyAttempt).Requeued["q"], 1)
			sameSlice(t, "taken at last", drain(t, s, "q", at(4*visibility)), []string{"c"})
		}},
		{"OneDeletedByID", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			ls := lease(t, s, "q", 3, base)
			must(t, "MessageDelete of the second", s.MessageDelete(t.Context(), "q", ls[1].Message.ID))
			depth(t, s, "q", 0, 2)
			sameSlice(t, "unknown", ack(t, s, "q", leaseIDs(ls)...), []string{ls[1].ID})
			depth(t, s, "q", 0, 0)
		}},
		{"OneCommitted", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			ls := lease(t, s, "q", 3, base)
			res := commit(t, s, broker.CommitGroup{Acks: []broker.LeaseRef{{Queue: "q", LeaseID: ls[1].ID}}})
			equal(t, "applied", res[0].Applied, true)
			depth(t, s, "q", 0, 2)
			sameSlice(t, "unknown", ack(t, s, "q", leaseIDs(ls)...), []string{ls[1].ID})
		}},
		// A reap cut short by its limit leaves the rest of the batch in
		// flight; its first message, back in the queue, leases again.
		{"ReapCutShort", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d", "e")
			ls := lease(t, s, "q", 5, base)
			res, err := s.Reap(t.Context(), broker.ReapParams{Now: at(2 * visibility), MaxAttempts: manyAttempt, Limit: 3})
			must(t, "Reap", err)
			equal(t, "requeued by the first reap", res.Requeued["q"], 3)
			equal(t, "More", res.More, true)
			again := lease(t, s, "q", 2, at(2*visibility))
			sameSlice(t, "leased again", pluck(again, func(l broker.Lease) string { return string(l.Message.Value) }), []string{"a", "b"})
			sameSlice(t, "unknown of the reaped", ack(t, s, "q", ls[0].ID, ls[1].ID), []string{ls[0].ID, ls[1].ID})
			sameSlice(t, "unknown of the leased again", ack(t, s, "q", leaseIDs(again)...), []string{})
			equal(t, "requeued by the second reap", reap(t, s, at(2*visibility), manyAttempt).Requeued["q"], 2)
			sameSlice(t, "taken", drain(t, s, "q", at(2*visibility)), []string{"c", "d", "e"})
		}},
		{"PurgedAndLeasedAgain", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			old := lease(t, s, "q", 2, base)
			must(t, "QueuePurge", s.QueuePurge(t.Context(), "q"))
			push(t, s, "q", at(time.Second), "x", "y")
			ls := lease(t, s, "q", 2, at(time.Second))
			sameSlice(t, "unknown of the leases before the purge", ack(t, s, "q", leaseIDs(old)...), leaseIDs(old))
			depth(t, s, "q", 0, 2)
			sameSlice(t, "unknown of the new leases", ack(t, s, "q", leaseIDs(ls)...), []string{})
			reapedNothing(t, reap(t, s, at(time.Hour), manyAttempt))
		}},
	}
}
