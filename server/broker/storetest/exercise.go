// Package storetest is the conformance suite of broker.Store: the executable
// form of the contract written in server/broker/store.go. Every
// implementation runs it unchanged from its own test, given a constructor
// and a way to reopen a store on the same data (a restart):
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			New: func(t *testing.T) broker.Store {
//				s, err := buntstore.Open(t.TempDir(), buntstore.Options{})
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { s.Close() })
//				return s
//			},
//			Reopen: func(t *testing.T, s broker.Store) broker.Store { ... },
//		})
//	}
//
// Where store.go is silent the suite makes the decision, and each such case
// says so in its comment. Times are passed explicitly (a fixed base plus
// offsets), so nothing depends on the wall clock and nothing sleeps; the one
// exception is key/value TTL, which implementations expire on the real clock
// and the suite checks only loosely.
package storetest

import (
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Harness is what the suite needs of one implementation.
type Harness struct {
	// New returns a fresh, empty store for one case and registers its
	// Close with t.Cleanup (the suite may close it first: a second Close
	// must be harmless).
	New func(t *testing.T) broker.Store
	// Reopen closes s and returns a store on the same data, as a restart
	// of the process would open it.
	Reopen func(t *testing.T, s broker.Store) broker.Store
}

// Run runs the whole suite: every case on a fresh store, then the
// durability cases, which reopen theirs.
func Run(t *testing.T, h Harness) {
	t.Helper()
	t.Run("Cases", func(t *testing.T) { exercise(t, h.New) })
	t.Run("Reopen", func(t *testing.T) { exerciseReopen(t, h) })
}

// exercise runs every case group, each case on a store of its own.
func exercise(t *testing.T, newStore func(t *testing.T) broker.Store) {
	t.Helper()
	groups := []struct {
		name  string
		cases []storeCase
	}{
		{"Push", pushCases()},
		{"TakePeek", takePeekCases()},
		{"Queue", queueCases()},
		{"Values", valueCases()},
		{"Lease", leaseCases()},
		{"Ack", ackCases()},
		{"LeasedTogether", leasedTogetherCases()},
		{"Nack", nackCases()},
		{"Reap", reapCases()},
		{"KV", kvCases()},
		{"KVSwap", kvSwapCases()},
		{"Concurrency", concurrencyCases()},
		{"Commit", commitCases()},
		{"Names", nameCases()},
		{"Records", recordCases()},
		{"Flush", flushCases()},
		{"Owners", ownerCases()},
		{"Events", eventCases()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
			}
		})
	}
}

// storeCase is one subtest: it gets a fresh store of its own.
type storeCase struct {
	name string
	run  func(t *testing.T, s broker.Store)
}
