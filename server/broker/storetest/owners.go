package storetest

import (
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// ownerCases pin down lease owners: LeaseRecover returns the leases of
// owners that are not alive and no others. Whether an owner whose
// heartbeat lapsed is gone depends on whether the store is shared, so the
// cases only use what both kinds agree on: an owner that never sent a
// heartbeat, or said it stopped, is gone; one whose heartbeat runs is not.
func ownerCases() []storeCase {
	return []storeCase{
		{"OnlyGoneOwnersLoseLeases", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d")
			heartbeat(t, s, "alive", at(time.Hour))
			heartbeat(t, s, "stops", at(time.Hour))
			kept := leaseAs(t, s, "q", 1, base, "alive")
			leaseAs(t, s, "q", 1, base, "stops")
			leaseAs(t, s, "q", 1, base, "never-said")
			must(t, "OwnerHeartbeat stop", s.OwnerHeartbeat(t.Context(), broker.OwnerParams{Owner: "stops"}))

			equal(t, "released", recoverAt(t, s, base)["q"], 2)
			depth(t, s, "q", 3, 1)
			sameSlice(t, "the live owner's lease acks", ack(t, s, "q", kept[0].ID), []string{})
			equal(t, "released again", len(recoverAt(t, s, base)), 0)
			sameSlice(t, "taken", drain(t, s, "q", base), []string{"b", "c", "d"})
		}},
		{"StoppingLater", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			heartbeat(t, s, "p", at(time.Hour))
			leaseAs(t, s, "q", 1, base, "p")
			equal(t, "released while p lives", len(recoverAt(t, s, base)), 0)
			must(t, "OwnerHeartbeat stop", s.OwnerHeartbeat(t.Context(), broker.OwnerParams{Owner: "p"}))
			equal(t, "released once p stopped", recoverAt(t, s, base)["q"], 1)
			equal(t, "taken", string(take(t, s, "q", base).Value), "a")
		}},
		// A lease of a gone owner that its owner acked meanwhile is simply
		// not there to release; an expired one is left to Reap's rules.
		{"AckedAndReapedAreNotReleased", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			ls := leaseAs(t, s, "q", 2, base, "gone")
			ack(t, s, "q", ls[0].ID)
			reap(t, s, at(2*visibility), manyAttempt)
			equal(t, "released", len(recoverAt(t, s, at(2*visibility))), 0)
			depth(t, s, "q", 1, 0)
		}},
		{"LimitAndMore", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			leaseAs(t, s, "q", 3, base, "gone")
			res, err := s.LeaseRecover(t.Context(), broker.LeaseRecoverParams{Now: base, Limit: 2})
			must(t, "LeaseRecover", err)
			equal(t, "first call released", res.Released["q"], 2)
			equal(t, "first call More", res.More, true)
			equal(t, "the rest", recoverAt(t, s, base)["q"], 1)
			depth(t, s, "q", 3, 0)
		}},
	}
}
