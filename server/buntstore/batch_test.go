package buntstore

import (
	"maps"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// keyCounts counts the store's keys by prefix.
func keyCounts(t *testing.T, s *Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := s.db.View(func(tx *buntdb.Tx) error {
		return tx.Ascend("", func(k, _ string) bool {
			out[k[:2]]++
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(out, "v:")
	delete(out, "q:")
	return out
}

func wantKeys(t *testing.T, s *Store, what string, want map[string]int) {
	t.Helper()
	if got := keyCounts(t, s); !maps.Equal(got, want) {
		t.Errorf("keys %s: %v, want %v", what, got, want)
	}
}

func pushN(t *testing.T, s *Store, q string, n int, now time.Time) {
	t.Helper()
	msgs := make([]broker.NewMessage, n)
	for i := range msgs {
		msgs[i].Value = []byte("message")
	}
	if _, err := s.QueuePush(t.Context(), broker.QueuePushParams{Queue: q, Messages: msgs, Now: now}); err != nil {
		t.Fatal(err)
	}
}

// leaseN leases n messages of q for a minute, as one batch.
func leaseN(t *testing.T, s *Store, q string, n int, now time.Time) []broker.Lease {
	t.Helper()
	ls, err := s.QueueLease(t.Context(), broker.QueueLeaseParams{Queue: q, N: n, Visibility: time.Minute, Now: now})
	if err != nil || len(ls) != n {
		t.Fatalf("lease %d: %d, %v", n, len(ls), err)
	}
	return ls
}

func ackIDs(t *testing.T, s *Store, q string, ls []broker.Lease) {
	t.Helper()
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	if unknown, err := s.LeaseAck(t.Context(), q, ids); err != nil || len(unknown) != 0 {
		t.Fatalf("ack %d leases: unknown %q, %v", len(ids), unknown, err)
	}
}

// A lease of many messages is one record and one deadline entry; an ack
// of all of it deletes both. Acks in parts rewrite the record while they
// take at least half of it, and then break it up into the leases of
// layout 3, which acks delete one by one.
func TestLeasedBatchIsOneRecord(t *testing.T) {
	s := openTest(t)
	now := time.Unix(1_900_000_000, 0)
	pushN(t, s, "q", 200, now)
	ls := leaseN(t, s, "q", 100, now)
	wantKeys(t, s, "after the lease", map[string]int{"r:": 100, "l:": 1, "b:": 1})
	err := s.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(batchKey("q", ls[0].Message.ID))
		if err != nil {
			return err
		}
		b, err := decodeBatch(v)
		if err != nil || b.encode() != v || len(b.ids) != 100 || b.deadline != nanos(ls[0].Deadline) {
			t.Errorf("the batch record decodes to %d members until %d, %v; encodes back the same: %v", len(b.ids), b.deadline, err, b.encode() == v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ackIDs(t, s, "q", ls)
	wantKeys(t, s, "after the ack", map[string]int{"r:": 100})

	ls = leaseN(t, s, "q", 100, now)
	ackIDs(t, s, "q", ls[:60])
	wantKeys(t, s, "after an ack of 60", map[string]int{"l:": 1, "b:": 1})
	ackIDs(t, s, "q", ls[60:70])
	wantKeys(t, s, "after an ack of 10 of the 40 left", map[string]int{"f:": 30, "d:": 1})
	ackIDs(t, s, "q", ls[70:])
	wantKeys(t, s, "after the rest", map[string]int{"d:": 1})
	if info, err := s.QueueGet(t.Context(), "q"); err != nil || info.InFlight != 0 || info.Acked != 200 {
		t.Errorf("queue after the acks: %+v, %v", info, err)
	}
}

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{Fsync: FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A commit whose groups ack members of one leased batch settles the batch
// once, by LeaseAck's rule, and a group whose lease an earlier group of the
// same commit took is skipped whole (its push is not made).
func TestCommitSettlesLeasedBatch(t *testing.T) {
	s := openTest(t)
	now := time.Unix(1_900_000_000, 0)
	pushN(t, s, "q", 10, now)
	ls := leaseN(t, s, "q", 10, now)
	commit := func(ls []broker.Lease, dup bool) []broker.CommitResult {
		t.Helper()
		var p broker.CommitParams
		p.Now = now
		for _, l := range ls {
			p.Groups = append(p.Groups, broker.CommitGroup{
				Acks:   []broker.LeaseRef{{Queue: "q", LeaseID: l.ID}},
				Pushes: []broker.QueuePush{{Queue: "out", Messages: []broker.NewMessage{{Value: []byte("r")}}}},
			})
		}
		if dup {
			p.Groups = append(p.Groups, p.Groups[0])
		}
		res, err := s.Commit(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := commit(ls[:6], true)
	for i, r := range res {
		if want := i < 6; r.Applied != want || (len(r.Pushed) == 1) != want {
			t.Errorf("group %d: applied %v with %d pushed, want applied %v", i, r.Applied, len(r.Pushed), want)
		}
	}
	wantKeys(t, s, "after a commit of 6 of 10", map[string]int{"l:": 1, "b:": 1, "r:": 6})
	res = commit(ls[6:8], false)
	if !res[0].Applied || !res[1].Applied {
		t.Errorf("commit of 2 of the 4 left: %+v", res)
	}
	wantKeys(t, s, "after a commit of 2 of the 4 left", map[string]int{"l:": 1, "b:": 1, "r:": 8})
	res = commit(ls[8:9], false)
	if !res[0].Applied {
		t.Errorf("commit of 1 of the 2 left: %+v", res)
	}
	wantKeys(t, s, "after a commit of 1 of the 2 left", map[string]int{"l:": 1, "b:": 1, "r:": 9})
	res = commit(ls, false)
	for i, r := range res {
		if r.Applied != (i == 9) {
			t.Errorf("commit of all 10 again: group %d applied %v", i, r.Applied)
		}
	}
	wantKeys(t, s, "after the last", map[string]int{"r:": 10})
	if info, err := s.QueueGet(t.Context(), "q"); err != nil || info.InFlight != 0 || info.Acked != 10 {
		t.Errorf("queue after the commits: %+v, %v", info, err)
	}
}
