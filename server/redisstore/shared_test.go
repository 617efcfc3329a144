package redisstore_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/redisstore"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
)

// Cases of what only a shared store does: two Stores on one Redis and
// prefix are two processes of one service.

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// events collects what a store's Watch announces.
type events struct {
	mu  sync.Mutex
	got []broker.Event
}

func watch(t *testing.T, s broker.Store) *events {
	e := &events{}
	stop := s.Watch(func(ev broker.Event) {
		e.mu.Lock()
		e.got = append(e.got, ev)
		e.mu.Unlock()
	})
	t.Cleanup(stop)
	return e
}

// wait waits up to 5 s for ev and returns how often it came.
func (e *events) wait(t *testing.T, ev broker.Event) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.mu.Lock()
		n := 0
		for _, g := range e.got {
			if g == ev {
				n++
			}
		}
		e.mu.Unlock()
		if n > 0 {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %+v never came (got %+v)", ev, e.got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *events) reset() {
	e.mu.Lock()
	e.got = nil
	e.mu.Unlock()
}

func pushValues(t *testing.T, s broker.Store, q string, values ...string) []broker.Message {
	t.Helper()
	msgs := make([]broker.NewMessage, len(values))
	for i, v := range values {
		msgs[i] = broker.NewMessage{Value: []byte(v)}
	}
	got, err := s.QueuePush(t.Context(), broker.QueuePushParams{Queue: q, Messages: msgs, Now: t0})
	if err != nil {
		t.Fatalf("push to %s: %v", q, err)
	}
	return got
}

func drainValues(t *testing.T, s broker.Store, q string) []string {
	t.Helper()
	var out []string
	for {
		m, err := s.QueueTake(t.Context(), q, t0)
		if errors.Is(err, broker.ErrQueueEmpty) {
			return out
		}
		if err != nil {
			t.Fatalf("take from %s: %v", q, err)
		}
		out = append(out, string(m.Value))
	}
}

func TestEventsReachOtherProcesses(t *testing.T) {
	url := redisServer(t).URL(newPrefix())
	a, b := open(t, url), open(t, url)
	onA, onB := watch(t, a), watch(t, b)
	pushValues(t, a, "q", "x")
	push := broker.Event{Kind: broker.EventPush, Queue: "q"}
	onB.wait(t, push)
	if n := onA.wait(t, push); n != 1 {
		t.Errorf("the pushing store announced its push %d times, want once (not again from the feed)", n)
	}
	if err := b.QueueSetStatus(t.Context(), "q", broker.StatusPaused); err != nil {
		t.Fatal(err)
	}
	onA.wait(t, broker.Event{Kind: broker.EventState, Queue: "q"})
	if err := b.QueuePurge(t.Context(), "q"); err != nil {
		t.Fatal(err)
	}
	onA.wait(t, broker.Event{Kind: broker.EventPurge, Queue: "q"})
	if _, err := b.FlushPublic(t.Context()); err != nil {
		t.Fatal(err)
	}
	onA.wait(t, broker.Event{Kind: broker.EventFlush})
}

func TestLeasesOfALapsedOwnerReturn(t *testing.T) {
	url := redisServer(t).URL(newPrefix())
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	pushValues(t, a, "q", "m1", "m2")
	if err := a.OwnerHeartbeat(ctx, broker.OwnerParams{Owner: "A", Until: t0.Add(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.QueueLease(ctx, broker.QueueLeaseParams{Queue: "q", N: 2, Visibility: time.Hour, Now: t0, Owner: "A"}); err != nil {
		t.Fatal(err)
	}
	res, err := b.LeaseRecover(ctx, broker.LeaseRecoverParams{Now: t0.Add(5 * time.Second)})
	if err != nil || len(res.Released) != 0 {
		t.Fatalf("recover while A's heartbeat runs = %+v, %v; want nothing", res, err)
	}
	res, err = b.LeaseRecover(ctx, broker.LeaseRecoverParams{Now: t0.Add(11 * time.Second)})
	if err != nil || res.Released["q"] != 2 {
		t.Fatalf("recover after A's heartbeat lapsed = %+v, %v; want 2 back to q", res, err)
	}
	if got := drainValues(t, b, "q"); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Errorf("taken after recovery = %q", got)
	}
}

// A commit whose process dies between its primary script and its changes
// for other slots is completed by another process's maintenance, once.
func TestOutboxCompletesAnInterruptedCommit(t *testing.T) {
	for _, kind := range []string{"server", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			url := redisServer(t).URL(newPrefix())
			if kind == "cluster" {
				url = redisCluster(t).URL(newPrefix())
			}
			a, b := open(t, url), open(t, url)
			ctx := t.Context()
			pushValues(t, a, "job/7/map", "task")
			ls, err := a.QueueLease(ctx, broker.QueueLeaseParams{Queue: "job/7/map", N: 1, Visibility: time.Hour, Now: t0})
			if err != nil || len(ls) != 1 {
				t.Fatalf("lease: %v, %v", ls, err)
			}
			a.LeaveForeign(true)
			res, err := a.Commit(ctx, broker.CommitParams{Now: t0, Groups: []broker.CommitGroup{{
				Acks:      []broker.LeaseRef{{Queue: "job/7/map", LeaseID: ls[0].ID}},
				Pushes:    []broker.QueuePush{{Queue: "job/7/part/0", Messages: []broker.NewMessage{{Value: []byte("run")}}}, {Queue: "results", Messages: []broker.NewMessage{{Value: []byte("out")}}}},
				RecordSet: []broker.Record{{Key: "jobtask/7/map/1", Value: []byte("done")}, {Key: "other/x", Value: []byte("far")}},
				KVSet:     []broker.KVEntry{{Key: "k", Value: broker.KVValue{Data: []byte("1")}}},
			}}})
			if err != nil || !res[0].Applied {
				t.Fatalf("commit = %+v, %v", res, err)
			}
			// The primary slot's changes are there; the others wait.
			if got := drainValues(t, b, "job/7/part/0"); !slices.Equal(got, []string{"run"}) {
				t.Errorf("part queue = %q, want [run]", got)
			}
			if got := drainValues(t, b, "results"); len(got) != 0 {
				t.Errorf("results before recovery = %q, want nothing yet", got)
			}
			b.SetOutboxGrace(0)
			for range 2 { // the second round finds nothing left to do
				b.Maintain(ctx)
			}
			if got := drainValues(t, b, "results"); !slices.Equal(got, []string{"out"}) {
				t.Errorf("results after recovery = %q, want [out] once", got)
			}
			if v, err := b.RecordGet(ctx, "other/x"); err != nil || string(v) != "far" {
				t.Errorf("record in another slot = %q, %v", v, err)
			}
			if v, err := b.KVGet(ctx, "k"); err != nil || string(v.Data) != "1" {
				t.Errorf("key/value = %q, %v", v.Data, err)
			}
			// Applying the same entry again (the committing process coming
			// back) changes nothing: the slot remembers the entry's id.
			b.Maintain(ctx)
			if got := drainValues(t, b, "results"); len(got) != 0 {
				t.Errorf("results after a second round = %q, want nothing", got)
			}
		})
	}
}

func TestCommitAcksOfTwoGroupsAreRefused(t *testing.T) {
	s := open(t, redisServer(t).URL(newPrefix()))
	ctx := t.Context()
	pushValues(t, s, "a", "1")
	pushValues(t, s, "b", "2")
	la, _ := s.QueueLease(ctx, broker.QueueLeaseParams{Queue: "a", N: 1, Visibility: time.Hour, Now: t0})
	lb, _ := s.QueueLease(ctx, broker.QueueLeaseParams{Queue: "b", N: 1, Visibility: time.Hour, Now: t0})
	_, err := s.Commit(ctx, broker.CommitParams{Now: t0, Groups: []broker.CommitGroup{{
		Acks: []broker.LeaseRef{{Queue: "a", LeaseID: la[0].ID}, {Queue: "b", LeaseID: lb[0].ID}},
	}}})
	if !errors.Is(err, broker.ErrInvalid) {
		t.Fatalf("commit acking queues of two groups: %v, want ErrInvalid", err)
	}
	qa, _ := s.QueueGet(ctx, "a")
	qb, _ := s.QueueGet(ctx, "b")
	if qa.InFlight != 1 || qb.InFlight != 1 {
		t.Errorf("in flight after the refused commit: a %d, b %d; want 1, 1", qa.InFlight, qb.InFlight)
	}
}

// Queue names may hold braces, which end a hash tag: every key of such a
// queue must still be in one slot, or the cluster refuses its scripts.
func TestBracesInNamesOnACluster(t *testing.T) {
	c := redisCluster(t)
	s := open(t, c.URL(newPrefix()))
	ctx := t.Context()
	for _, q := range []string{"{", "}", "a{b}c", "}{", "{}", "%7B", "x%", "{job}/1/map"} {
		pushValues(t, s, q, "v")
		ls, err := s.QueueLease(ctx, broker.QueueLeaseParams{Queue: q, N: 1, Visibility: time.Hour, Now: t0})
		if err != nil || len(ls) != 1 {
			t.Fatalf("lease from %q: %v, %v", q, ls, err)
		}
		dead, err := s.LeaseNack(ctx, broker.LeaseNackParams{Queue: q, LeaseID: ls[0].ID, MaxAttempts: 1, Now: t0})
		if err != nil || !dead {
			t.Fatalf("nack on %q to its dead-letter queue: %v, %v", q, dead, err)
		}
		if got := drainValues(t, s, broker.DeadQueue(q)); !slices.Equal(got, []string{"v"}) {
			t.Errorf("dead letters of %q = %q", q, got)
		}
	}
	// Every key of a queue and its dead-letter queue hash to one slot.
	keys := redisstore.QueueKeys(s, "a{b}c")
	keys = append(keys, redisstore.QueueKeys(s, "a{b}c.dead")...)
	slot := ""
	for _, k := range keys {
		out, err := c.Nodes[0].CLI("CLUSTER", "KEYSLOT", k)
		if err != nil {
			t.Fatal(err)
		}
		if slot == "" {
			slot = out
		} else if out != slot {
			t.Errorf("key %q is in slot %s, the queue's first key in %s", k, out, slot)
		}
	}
}

func TestFeedResyncsAfterARedisRestart(t *testing.T) {
	srv, err := redistest.Start(t.TempDir(), redistest.Options{Fsync: "always"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	url := srv.URL(newPrefix())
	a := open(t, url)
	onA := watch(t, a)
	pushValues(t, a, "q", "before")
	if err := srv.Restart(true); err != nil {
		t.Fatal(err)
	}
	onA.wait(t, broker.Event{Kind: broker.EventResync})
	b := open(t, url)
	onA.reset()
	pushValues(t, b, "q", "after")
	onA.wait(t, broker.Event{Kind: broker.EventPush, Queue: "q"})
	// appendfsync always: the acknowledged push survived the SIGKILL.
	if got := drainValues(t, a, "q"); !slices.Equal(got, []string{"before", "after"}) {
		t.Errorf("after the crash and restart = %q", got)
	}
}

func TestCorruptDataIsAnError(t *testing.T) {
	s := open(t, redisServer(t).URL(newPrefix()))
	ctx := t.Context()
	pushValues(t, s, "q", "a")
	meta := redisstore.QueueKeys(s, "q")[0]
	records := redisstore.QueueKeys(s, "q")[2]
	for _, tc := range []struct {
		name  string
		setup func() error
		op    func() error
	}{
		{"MetaStatus", func() error { return s.Client().HSet(ctx, meta, "st", "9").Err() }, func() error {
			_, err := s.QueueGet(ctx, "q")
			return err
		}},
		{"MetaCount", func() error { return s.Client().HSet(ctx, meta, "st", "0", "len", "-3").Err() }, func() error {
			_, err := s.QueueGet(ctx, "q")
			return err
		}},
		{"RecordNotMsgpack", func() error {
			return s.Client().HSet(ctx, meta, "len", "1").Err()
		}, func() error {
			s.Client().HSet(ctx, records, "1", "not msgpack")
			_, err := s.QueueTake(ctx, "q", t0)
			return err
		}},
		{"RecordTooShort", func() error { return nil }, func() error {
			s.Client().HSet(ctx, records, "1", "\x93\x01\x02\x03") // an array of three
			_, err := s.QueuePeek(ctx, "q", t0)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.setup(); err != nil {
				t.Fatal(err)
			}
			err := tc.op()
			if err == nil {
				t.Fatal("no error from corrupt data")
			}
			if errors.Is(err, broker.ErrQueueNotFound) || errors.Is(err, broker.ErrQueueEmpty) {
				t.Errorf("corrupt data read as an ordinary answer: %v", err)
			}
		})
	}
}

func TestURLs(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // the Config as %+v, or the error's start
	}{
		{"redis://127.0.0.1:6379", "{Addrs:[127.0.0.1:6379] Cluster:false TLS:false Username: Password: DB:0 Prefix:tabreduce}"},
		{"redis://:secret@h:1/3?prefix=svc", "{Addrs:[h:1] Cluster:false TLS:false Username: Password:secret DB:3 Prefix:svc}"},
		{"rediss://u:p@h", "{Addrs:[h:6379] Cluster:false TLS:true Username:u Password:p DB:0 Prefix:tabreduce}"},
		{"redis+cluster://a:1,b:2", "{Addrs:[a:1 b:2] Cluster:true TLS:false Username: Password: DB:0 Prefix:tabreduce}"},
		{"redis://a:1,b:2", "store URL: several hosts need redis+cluster://"},
		{"redis+cluster://a:1/2", "store URL: a cluster has no database number"},
		{"redis://h:1/x", `store URL: database "x" is not a number`},
		{"redis://h:1?pool=3", `store URL: unknown parameter "pool"`},
		{"redis://h:1?prefix=a{b}", `store prefix "a{b}"`},
		{"redis://h:1?prefix=a%20b", `store prefix "a b"`},
		{"memcache://h:1", `store URL: scheme "memcache"`},
		{"redis://", "store URL: no host"},
	} {
		c, err := redisstore.ParseURL(tc.url)
		got := fmt.Sprintf("%+v", c)
		if err != nil {
			got = err.Error()
		}
		if len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
			t.Errorf("ParseURL(%q) = %s, want %s", tc.url, got, tc.want)
		}
	}
}

// lease leases one message of q for owner A at now, for a second.
func lease(t *testing.T, s broker.Store, q string, now time.Time) broker.Lease {
	t.Helper()
	ls, err := s.QueueLease(t.Context(), broker.QueueLeaseParams{Queue: q, N: 1, Visibility: time.Second, Now: now, Owner: "A"})
	if err != nil || len(ls) != 1 {
		t.Fatalf("lease from %s at %v = %v, %v; want one", q, now, ls, err)
	}
	return ls[0]
}

// A store writes a queue's due hint before its first leases and then
// skips it; a reaper that dropped the queue's due score meanwhile (it had
// nothing leased) must not leave a later lease where no reaper looks.
func TestALeaseAfterTheReaperDroppedItsQueueLapses(t *testing.T) {
	url := redisServer(t).URL(newPrefix())
	s := open(t, url)
	ctx := t.Context()
	pushValues(t, s, "q", "m1", "m2", "m3")
	var ids []string
	for range 2 { // the second sees the due generation unchanged across its hint
		ids = append(ids, lease(t, s, "q", t0).ID)
	}
	if unknown, err := s.LeaseAck(ctx, "q", ids); err != nil || len(unknown) != 0 {
		t.Fatalf("ack = %v, %v", unknown, err)
	}
	res, err := s.Reap(ctx, broker.ReapParams{Now: t0.Add(2 * time.Second), MaxAttempts: 5})
	if err != nil || len(res.Requeued) != 0 {
		t.Fatalf("reap with nothing leased = %+v, %v; want nothing back", res, err)
	}
	lease(t, s, "q", t0.Add(3*time.Second)) // skips the hint it wrote before, which the reap undid
	res, err = s.Reap(ctx, broker.ReapParams{Now: t0.Add(5 * time.Second), MaxAttempts: 5})
	if err != nil || res.Requeued["q"] != 1 {
		t.Fatalf("reap after the last lease lapsed = %+v, %v; want it back on q", res, err)
	}
}

// An owner caches the queues it hinted while its heartbeat holds; once
// another process recovered it as gone (and forgot its queue set), its
// next heartbeat says so, and its leases are hinted again.
func TestLeasesOfARecoveredOwnerAreHintedAgain(t *testing.T) {
	url := redisServer(t).URL(newPrefix())
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	pushValues(t, a, "q", "m1", "m2")
	heartbeat := func(until time.Time) {
		t.Helper()
		if err := a.OwnerHeartbeat(ctx, broker.OwnerParams{Owner: "A", Until: until}); err != nil {
			t.Fatal(err)
		}
	}
	heartbeat(t0.Add(10 * time.Second))
	lease(t, a, "q", t0)
	res, err := b.LeaseRecover(ctx, broker.LeaseRecoverParams{Now: t0.Add(11 * time.Second)})
	if err != nil || res.Released["q"] != 1 {
		t.Fatalf("recover after A's heartbeat lapsed = %+v, %v; want 1 back to q", res, err)
	}
	heartbeat(t0.Add(30 * time.Second))
	lease(t, a, "q", t0.Add(5*time.Second)) // A's clock: within the time its hints are trusted

	res, err = b.LeaseRecover(ctx, broker.LeaseRecoverParams{Now: t0.Add(31 * time.Second)})
	if err != nil || res.Released["q"] != 1 {
		t.Fatalf("recover after A lapsed again = %+v, %v; want its second lease back to q", res, err)
	}
}
