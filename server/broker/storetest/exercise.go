// Package storetest is the conformance suite of broker.Store: the executable
// form of the contract written in server/broker/store.go. Every
// implementation runs it unchanged from its own test:
//
//	func open(t *testing.T, dir string) broker.Store {
//		s, err := buntstore.Open(dir, buntstore.Options{})
//		if err != nil {
//			t.Fatal(err)
//		}
//		return s
//	}
//
//	func TestStore(t *testing.T) {
//		storetest.Exercise(t, func(t *testing.T) broker.Store {
//			s := open(t, t.TempDir())
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
//	func TestStoreReopen(t *testing.T) { storetest.ExerciseReopen(t, open) }
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

// Exercise runs the whole suite. newStore must return a fresh, empty store for
// each subtest and register its Close with t.Cleanup.
func Exercise(t *testing.T, newStore func(t *testing.T) broker.Store) {
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
		{"Nack", nackCases()},
		{"Reap", reapCases()},
		{"KV", kvCases()},
		{"KVSwap", kvSwapCases()},
		{"Concurrency", concurrencyCases()},
		{"Commit", commitCases()},
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
