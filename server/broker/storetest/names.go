package storetest

import (
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
)

// nameCases check that any name the broker allows keeps its queue apart
// from every other: store.go's layout may not take a character of the name
// for a separator.
func nameCases() []storeCase {
	return []storeCase{
		{"EachNameIsItsOwnQueue", func(t *testing.T, s broker.Store) {
			for i, q := range sampleNames {
				for range i + 1 {
					push(t, s, q, base, q)
				}
			}
			sameSlice(t, "queues", names(list(t, s)), sortedNames())
			for i, q := range sampleNames {
				equal(t, q+" length", info(t, s, q).Length, int64(i+1))
				equal(t, q+" first", string(take(t, s, q, base).Value), q)
			}
		}},
		{"PurgeTakesOnlyItsQueue", func(t *testing.T, s broker.Store) {
			for _, q := range sampleNames {
				push(t, s, q, base, q)
			}
			for _, q := range []string{"a", "a:b", "job/1/map"} {
				leaseOne(t, s, q, base)
				must(t, "QueuePurge "+q, s.QueuePurge(t.Context(), q))
			}
			for _, q := range sampleNames {
				_, err := s.QueueGet(t.Context(), q)
				if q == "a" || q == "a:b" || q == "job/1/map" {
					isErr(t, "QueueGet "+q+" after its purge", err, broker.ErrQueueNotFound)
					continue
				}
				must(t, "QueueGet "+q, err)
				sameSlice(t, q+" after the purges", drain(t, s, q, base), []string{q})
			}
		}},
		{"LeasesKeepTheirQueue", func(t *testing.T, s broker.Store) {
			for _, q := range sampleNames {
				push(t, s, q, base, q)
			}
			for _, q := range sampleNames {
				l := leaseOne(t, s, q, base)
				equal(t, "leased from "+q, string(l.Message.Value), q)
				equal(t, "leased Queue", l.Message.Queue, q)
			}
			res := reap(t, s, at(2*visibility), manyAttempt)
			for _, q := range sampleNames {
				equal(t, q+" requeued", res.Requeued[q], 1)
				equal(t, q+" after the reap", string(take(t, s, q, at(2*visibility)).Value), q)
			}
		}},
	}
}
