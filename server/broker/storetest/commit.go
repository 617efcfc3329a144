package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// commitCases cover the methods the map/reduce engine builds on: Commit,
// LeaseRelease, QueueScan, KVScan and KVDeletePrefix.
func commitCases() []storeCase {
	ctx := context.Background()
	return []storeCase{
		{"CommitAcksPushesAndSetsAtomically", func(t *testing.T, s broker.Store) {
			push(t, s, "tasks", at(0), "t1")
			l := leaseOne(t, s, "tasks", at(0))
			applied, err := s.Commit(ctx, broker.CommitParams{Now: at(1), Groups: []broker.CommitGroup{{
				Acks: []broker.LeaseRef{{Queue: "tasks", LeaseID: l.ID}},
				Pushes: []broker.QueuePush{
					{Queue: "out.0", Messages: []broker.NewMessage{{Value: []byte("a")}, {Value: []byte("b")}}},
					{Queue: "out.1", Messages: []broker.NewMessage{{Value: []byte("c")}}},
				},
				KVSet: []broker.KVEntry{{Key: "task/1", Value: broker.KVValue{Data: []byte(`{"ok":true}`)}}},
			}}})
			must(t, "Commit", err)
			sameSlice(t, "applied", appliedOf(applied), []bool{true})
			depth(t, s, "tasks", 0, 0)
			equal(t, "tasks Acked", info(t, s, "tasks").Acked, 1)
			sameSlice(t, "out.0", drain(t, s, "out.0", at(2)), []string{"a", "b"})
			sameSlice(t, "out.1", drain(t, s, "out.1", at(2)), []string{"c"})
			v, err := s.KVGet(ctx, "task/1")
			must(t, "KVGet", err)
			sameBytes(t, "task/1", v.Data, []byte(`{"ok":true}`))
		}},
		{"CommitSkipsGroupsWhoseLeaseIsGone", func(t *testing.T, s broker.Store) {
			push(t, s, "tasks", at(0), "t1", "t2")
			ls := lease(t, s, "tasks", 2, at(0))
			ack(t, s, "tasks", ls[0].ID) // the first result already committed
			groups := []broker.CommitGroup{
				{Acks: []broker.LeaseRef{{Queue: "tasks", LeaseID: ls[0].ID}}, Pushes: []broker.QueuePush{{Queue: "out", Messages: []broker.NewMessage{{Value: []byte("dup")}}}},
					KVSet: []broker.KVEntry{{Key: "dup", Value: broker.KVValue{Data: []byte("1")}}}},
				{Acks: []broker.LeaseRef{{Queue: "tasks", LeaseID: ls[1].ID}}, Pushes: []broker.QueuePush{{Queue: "out", Messages: []broker.NewMessage{{Value: []byte("second")}}}}},
				{Pushes: []broker.QueuePush{{Queue: "out", Messages: []broker.NewMessage{{Value: []byte("free")}}}}},
			}
			applied, err := s.Commit(ctx, broker.CommitParams{Now: at(1), Groups: groups})
			must(t, "Commit", err)
			sameSlice(t, "applied", appliedOf(applied), []bool{false, true, true})
			sameSlice(t, "out", drain(t, s, "out", at(2)), []string{"second", "free"})
			_, err = s.KVGet(ctx, "dup")
			isErr(t, "KVGet of a skipped group's key", err, broker.ErrKeyNotFound)
			// Committing the same result again changes nothing.
			applied, err = s.Commit(ctx, broker.CommitParams{Now: at(3), Groups: groups[1:2]})
			must(t, "second Commit", err)
			sameSlice(t, "applied again", appliedOf(applied), []bool{false})
			wantEmpty(t, s, "out", at(4))
		}},
		{"CommitNeedsEveryLeaseOfAGroup", func(t *testing.T, s broker.Store) {
			push(t, s, "in", at(0), "a", "b")
			ls := lease(t, s, "in", 2, at(0))
			ack(t, s, "in", ls[1].ID)
			g := broker.CommitGroup{
				Acks:   []broker.LeaseRef{{Queue: "in", LeaseID: ls[0].ID}, {Queue: "in", LeaseID: ls[1].ID}},
				Pushes: []broker.QueuePush{{Queue: "out", Messages: []broker.NewMessage{{Value: []byte("x")}}}},
			}
			applied, err := s.Commit(ctx, broker.CommitParams{Now: at(1), Groups: []broker.CommitGroup{g}})
			must(t, "Commit", err)
			sameSlice(t, "applied", appliedOf(applied), []bool{false})
			depth(t, s, "in", 0, 1) // the live lease was not acked
			wantEmpty(t, s, "out", at(2))
		}},
		{"CommitDeletesMessagesAndReportsPushes", func(t *testing.T, s broker.Store) {
			msgs := push(t, s, "out", at(0), "a", "b", "c")
			l := leaseOne(t, s, "out", at(0)) // "a", leased
			res, err := s.Commit(ctx, broker.CommitParams{Now: at(1), Groups: []broker.CommitGroup{{
				Deletes: []broker.MessageRef{{Queue: "out", ID: l.Message.ID}, {Queue: "out", ID: msgs[1].ID}, {Queue: "out", ID: 99}, {Queue: "never", ID: 1}},
				Pushes:  []broker.QueuePush{{Queue: "out", Messages: []broker.NewMessage{{Value: []byte("d")}}}, {Queue: "other", Messages: []broker.NewMessage{{Value: []byte("e")}}}},
			}}})
			must(t, "Commit", err)
			sameSlice(t, "pushed ids", ids(res[0].Pushed), []uint64{4, 1})
			sameSlice(t, "pushed queues", pluck(res[0].Pushed, func(m broker.Message) string { return m.Queue }), []string{"out", "other"})
			depth(t, s, "out", 2, 0)
			sameSlice(t, "left", drain(t, s, "out", at(2)), []string{"c", "d"})
		}},
		{"CommitDeletesKeys", func(t *testing.T, s broker.Store) {
			must(t, "KVSet", s.KVSet(ctx, []broker.KVEntry{{Key: "a", Value: broker.KVValue{Data: []byte("1")}}}))
			_, err := s.Commit(ctx, broker.CommitParams{Now: at(0), Groups: []broker.CommitGroup{{KVDelete: []string{"a", "never-set"}}}})
			must(t, "Commit", err)
			_, err = s.KVGet(ctx, "a")
			isErr(t, "KVGet after delete", err, broker.ErrKeyNotFound)
		}},
		{"LeaseReleaseKeepsAttemptsAndReturnsToHead", func(t *testing.T, s broker.Store) {
			push(t, s, "q", at(0), "a", "b", "c")
			ls := lease(t, s, "q", 2, at(0))
			unknown, err := s.LeaseRelease(ctx, "q", []string{ls[1].ID, "99.9"})
			must(t, "LeaseRelease", err)
			sameSlice(t, "unknown", unknown, []string{"99.9"})
			depth(t, s, "q", 2, 1)
			m := take(t, s, "q", at(1))
			equal(t, "first after release", string(m.Value), "b")
			equal(t, "attempts after release", m.Attempts, 0)
			unknown = ack(t, s, "q", ls[1].ID)
			sameSlice(t, "ack of a released lease", unknown, []string{ls[1].ID})
		}},
		{"RecoverKeepsNackDelays", func(t *testing.T, s broker.Store) {
			push(t, s, "q", at(0), "a", "b")
			ls := lease(t, s, "q", 2, at(0))
			nack(t, s, ls[0], at(1), "later", manyAttempt) // delay 0: back at once
			_, err := s.LeaseNack(ctx, broker.LeaseNackParams{Queue: "q", LeaseID: ls[1].ID, Delay: time.Hour, Error: "wait", MaxAttempts: manyAttempt, Now: at(1)})
			must(t, "LeaseNack with delay", err)
			equal(t, "released", len(recoverAt(t, s, at(1))), 0)
			equal(t, "ready after release", string(take(t, s, "q", at(2)).Value), "a")
			wantEmpty(t, s, "q", at(3))
			reap(t, s, at(time.Hour+time.Second), manyAttempt)
			equal(t, "ready after the delay", string(take(t, s, "q", at(time.Hour+2*time.Second)).Value), "b")
		}},
		{"LeaseIDsOutliveAPurge", func(t *testing.T, s broker.Store) {
			push(t, s, "q", at(0), "a")
			old := leaseOne(t, s, "q", at(0))
			must(t, "QueuePurge", s.QueuePurge(ctx, "q"))
			push(t, s, "q", at(1), "b")
			fresh := leaseOne(t, s, "q", at(1))
			equal(t, "same id after purge", fresh.Message.ID, old.Message.ID)
			sameSlice(t, "ack of the lease from before the purge", ack(t, s, "q", old.ID), []string{old.ID})
			depth(t, s, "q", 0, 1)
		}},
		{"QueueScanReadsWithoutChanging", func(t *testing.T, s broker.Store) {
			msgs := push(t, s, "q", at(0), "a", "b", "c", "d")
			got, err := s.QueueScan(ctx, "q", 0, 2)
			must(t, "QueueScan", err)
			sameSlice(t, "first page", ids(got), []uint64{1, 2})
			got, err = s.QueueScan(ctx, "q", got[len(got)-1].ID, 10)
			must(t, "QueueScan", err)
			sameSlice(t, "second page", ids(got), []uint64{3, 4})
			equal(t, "count untouched", got[0].Count, 0)
			depth(t, s, "q", int64(len(msgs)), 0)
			got, err = s.QueueScan(ctx, "nothing", 0, 10)
			must(t, "QueueScan of unknown queue", err)
			equal(t, "unknown queue messages", len(got), 0)
		}},
		{"KVScanAndDeletePrefix", func(t *testing.T, s broker.Store) {
			set := func(k string) broker.KVEntry {
				return broker.KVEntry{Key: k, Value: broker.KVValue{Data: []byte(`"` + k + `"`)}}
			}
			must(t, "KVSet", s.KVSet(ctx, []broker.KVEntry{set("job/2"), set("job/1"), set("job/10/x"), set("jobs"), set("other")}))
			got, err := s.KVScan(ctx, "job/")
			must(t, "KVScan", err)
			sameSlice(t, "keys", pluck(got, func(e broker.KVEntry) string { return e.Key }), []string{"job/1", "job/10/x", "job/2"})
			sameBytes(t, "job/1 value", got[0].Value.Data, []byte(`"job/1"`))
			n, err := s.KVDeletePrefix(ctx, "job/")
			must(t, "KVDeletePrefix", err)
			equal(t, "deleted", n, 3)
			got, err = s.KVScan(ctx, "job")
			must(t, "KVScan after delete", err)
			sameSlice(t, "left", pluck(got, func(e broker.KVEntry) string { return e.Key }), []string{"jobs"})
		}},
	}
}

func appliedOf(rs []broker.CommitResult) []bool {
	return pluck(rs, func(r broker.CommitResult) bool { return r.Applied })
}
