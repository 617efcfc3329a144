package storetest

import (
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
)

// flushCases pin down FlushPublic: the public namespace goes whole, the
// internal one stays whole.
func flushCases() []storeCase {
	return []storeCase{
		{"PublicGoesInternalStays", func(t *testing.T, s broker.Store) {
			push(t, s, "a", base, "1", "2")
			push(t, s, "a:b", base, "3")
			nack(t, s, leaseOne(t, s, "a:b", base), base, "dead", 1) // a:b.dead
			leaseOne(t, s, "a", base)
			push(t, s, "job/1/map", base, "task1", "task2")
			leaseOne(t, s, "job/1/map", base)
			kvSet(t, s, kv("k", "1", false), kv("job/1", `"forged"`, false))
			commit(t, s, broker.CommitGroup{RecordSet: []broker.Record{{Key: "job/1", Value: []byte("record")}}})

			res, err := s.FlushPublic(t.Context())
			must(t, "FlushPublic", err)
			equal(t, "queues flushed", res.Queues, 3)
			equal(t, "keys flushed", res.Keys, 2)
			sameSlice(t, "queues left", names(list(t, s)), []string{"job/1/map"})
			depth(t, s, "job/1/map", 1, 1)
			for _, q := range []string{"a", "a:b", "a:b.dead"} {
				_, err := s.QueueGet(t.Context(), q)
				isErr(t, "QueueGet "+q+" after the flush", err, broker.ErrQueueNotFound)
			}
			_, err = s.KVGet(t.Context(), "k")
			isErr(t, "KVGet after the flush", err, broker.ErrKeyNotFound)
			got, err := s.RecordGet(t.Context(), "job/1")
			must(t, "RecordGet after the flush", err)
			sameBytes(t, "record after the flush", got, []byte("record"))
			equal(t, "nothing left to reap", reap(t, s, at(2*visibility), manyAttempt).Requeued["a"], 0)
			sameSlice(t, "a after the flush", ids(push(t, s, "a", base, "new")), []uint64{1})
		}},
		{"EmptyStore", func(t *testing.T, s broker.Store) {
			res, err := s.FlushPublic(t.Context())
			must(t, "FlushPublic", err)
			equal(t, "flushed", res, broker.FlushResult{})
		}},
	}
}
