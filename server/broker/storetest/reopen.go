package storetest

import (
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// exerciseReopen checks durability: whatever a store acknowledged before it
// closed is there, unchanged, when it is reopened on the same data.
func exerciseReopen(t *testing.T, h Harness) {
	t.Helper()
	for _, c := range reopenCases() {
		t.Run(c.name, func(t *testing.T) {
			s := h.New(t)
			defer func() { s.Close() }()
			reopen := func() broker.Store {
				t.Helper()
				s = h.Reopen(t, s)
				return s
			}
			c.run(t, s, reopen)
		})
	}
}

// reopenCase writes to s, calls reopen (which closes s and opens a store on
// the same data) and checks the store it returns.
type reopenCase struct {
	name string
	run  func(t *testing.T, s broker.Store, reopen func() broker.Store)
}

func reopenCases() []reopenCase {
	return []reopenCase{
		{"Messages", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			want := pushMessages(t, s, "q", base,
				broker.NewMessage{Value: []byte("a")},
				broker.NewMessage{Value: bigValue(1000), TTL: time.Hour},
				broker.NewMessage{Value: []byte{0, 0xff}},
			)
			nack(t, s, leaseOne(t, s, "q", base), base, "boom", manyAttempt)
			peek(t, s, "q", base)
			want[0].Count, want[0].Attempts, want[0].Error = 2, 1, "boom"

			s = reopen()
			// A lease raises Count by one and shows each message whole.
			got := lease(t, s, "q", len(want)+1, base)
			if len(got) != len(want) {
				t.Fatalf("leased %d messages after reopen, want %d", len(got), len(want))
			}
			for i, l := range got {
				want[i].Count++
				sameMessage(t, l.Message, want[i])
			}
		}},
		{"QueueState", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d")
			must(t, "QueueSetStatus", s.QueueSetStatus(t.Context(), "q", broker.StatusPaused))
			must(t, "QueueSetPolicy", s.QueueSetPolicy(t.Context(), "q", broker.PolicyBroadcast))
			take(t, s, "q", base)
			ack(t, s, "q", leaseOne(t, s, "q", base).ID)
			nack(t, s, leaseOne(t, s, "q", base), base, "dead", 1)
			leaseOne(t, s, "q", base)
			must(t, "QueueSetPolicy", s.QueueSetPolicy(t.Context(), "only-policy", broker.PolicyBroadcast))
			want := list(t, s)

			s = reopen()
			got := list(t, s)
			sameSlice(t, "queue names after reopen", names(got), names(want))
			for i := range min(len(got), len(want)) {
				sameInfo(t, got[i], want[i])
			}
		}},
		{"IDsContinueAfterEmptying", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			drain(t, s, "q", base)
			s = reopen()
			equal(t, "LastID after reopen", info(t, s, "q").LastID, 3)
			sameSlice(t, "ids pushed after reopen", ids(push(t, s, "q", base, "d")), []uint64{4})
			s = reopen()
			sameSlice(t, "ids pushed after a second reopen", ids(push(t, s, "q", base, "e")), []uint64{5})
		}},
		// A process that crashed never says it stopped: once its heartbeat
		// has lapsed, its leases come back (at once on a store one process
		// holds exclusively).
		{"LeasesInFlight", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			heartbeat(t, s, "before", at(time.Minute))
			leaseAs(t, s, "q", 2, base, "before")
			s = reopen()
			depth(t, s, "q", 1, 2)
			equal(t, "released after reopen", recoverAt(t, s, at(time.Hour))["q"], 2)
			sameSlice(t, "taken after release", drain(t, s, "q", base), []string{"a", "b", "c"})
		}},
		{"Records", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			commit(t, s, broker.CommitGroup{RecordSet: []broker.Record{{Key: "job/1", Value: []byte("one")}, {Key: "job/2", Value: bigValue(1000)}}})
			commit(t, s, broker.CommitGroup{RecordDelete: []string{"job/1"}, RecordSet: []broker.Record{{Key: "job/3", Value: []byte{}}}})
			s = reopen()
			got := recordScan(t, s, broker.RecordScanParams{Prefix: "job/"})
			sameSlice(t, "record keys after reopen", recordKeys(got), []string{"job/2", "job/3"})
			sameBytes(t, "job/2 after reopen", got[0].Value, bigValue(1000))
		}},
		{"AnyQueueName", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			for _, q := range sampleNames {
				push(t, s, q, base, q)
			}
			s = reopen()
			sameSlice(t, "queues after reopen", names(list(t, s)), sortedNames())
			for _, q := range sampleNames {
				sameSlice(t, q+" after reopen", drain(t, s, q, base), []string{q})
			}
		}},
		{"DelayedNack", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			push(t, s, "q", base, "a")
			nackLater(t, s, leaseOne(t, s, "q", base), base, time.Minute, "later")
			s = reopen()
			wantEmpty(t, s, "q", base)
			reap(t, s, at(time.Minute), manyAttempt)
			m := take(t, s, "q", at(time.Minute))
			equal(t, "Error after reopen", m.Error, "later")
			equal(t, "Attempts after reopen", m.Attempts, 1)
		}},
		{"DeadLetters", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			push(t, s, "q", base, "a")
			nack(t, s, leaseOne(t, s, "q", base), base, "fatal", 1)
			s = reopen()
			equal(t, "dead message's Error after reopen", checkDead(t, s, "q", "a", 1).Error, "fatal")
		}},
		{"Deletes", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			push(t, s, "gone", base, "a")
			must(t, "QueuePurge", s.QueuePurge(t.Context(), "gone"))
			push(t, s, "q", base, "a", "b", "c")
			must(t, "MessageDelete", s.MessageDelete(t.Context(), "q", 2))
			ack(t, s, "q", leaseOne(t, s, "q", base).ID)
			kvSet(t, s, kv("k", "1", false))
			must(t, "KVDelete", s.KVDelete(t.Context(), "k"))
			s = reopen()
			_, err := s.QueueGet(t.Context(), "gone")
			isErr(t, "QueueGet of a purged queue after reopen", err, broker.ErrQueueNotFound)
			sameSlice(t, "taken after reopen", drain(t, s, "q", base), []string{"c"})
			_, err = s.KVGet(t.Context(), "k")
			isErr(t, "KVGet of a deleted key after reopen", err, broker.ErrKeyNotFound)
		}},
		{"KeyValues", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			var entries []broker.KVEntry
			for _, v := range sampleValues {
				entries = append(entries, broker.KVEntry{Key: v.name, Value: broker.KVValue{Data: v.value, Raw: v.name != "JSON"}})
			}
			entries = append(entries, broker.KVEntry{Key: "ttl", Value: broker.KVValue{Data: []byte("1")}, TTL: time.Hour})
			kvSet(t, s, entries...)
			s = reopen()
			for _, e := range entries {
				sameKV(t, "KVGet "+e.Key+" after reopen", kvGet(t, s, e.Key), e.Value)
			}
		}},
		// errors.go: ErrClosed means the store has been closed.
		{"ClosedStoreSaysSo", func(t *testing.T, s broker.Store, reopen func() broker.Store) {
			push(t, s, "q", base, "a")
			must(t, "Close", s.Close())
			_, err := s.QueuePush(t.Context(), broker.QueuePushParams{Queue: "q", Messages: []broker.NewMessage{{}}, Now: base})
			isErr(t, "QueuePush after Close", err, broker.ErrClosed)
			_, err = s.QueueTake(t.Context(), "q", base)
			isErr(t, "QueueTake after Close", err, broker.ErrClosed)
			_, err = s.KVGet(t.Context(), "k")
			isErr(t, "KVGet after Close", err, broker.ErrClosed)
		}},
	}
}

// sameMessage compares every field of a message.
func sameMessage(t *testing.T, got, want broker.Message) {
	t.Helper()
	what := want.Key()
	equal(t, what+" Queue", got.Queue, want.Queue)
	equal(t, what+" ID", got.ID, want.ID)
	sameBytes(t, what+" Value", got.Value, want.Value)
	equal(t, what+" Count", got.Count, want.Count)
	equal(t, what+" Attempts", got.Attempts, want.Attempts)
	equal(t, what+" Error", got.Error, want.Error)
	sameTime(t, what+" Created", got.Created, want.Created)
	sameTime(t, what+" Expires", got.Expires, want.Expires)
}

// sameInfo compares every field of a queue's state.
func sameInfo(t *testing.T, got, want broker.QueueInfo) {
	t.Helper()
	sameTime(t, want.Name+" Created", got.Created, want.Created)
	got.Created, want.Created = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("QueueInfo = %+v, want %+v", got, want)
	}
}
