package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// base is the suite's fixed "now"; cases move time by offsets from it.
var base = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

// Defaults the cases share.
const (
	visibility  = time.Minute // lease visibility unless a case says otherwise
	manyAttempt = 100         // MaxAttempts high enough never to dead-letter
	reapLimit   = 10_000      // Reap limit high enough never to bind
)

// at is base moved by d.
func at(d time.Duration) time.Time { return base.Add(d) }

// equal reports got != want as "what = got, want want".
func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// sameTime reports two times that are not the same instant.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// sameBytes reports two values that differ; nil and empty are the same.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %q (%d bytes), want %q (%d bytes)", what, clip(got), len(got), clip(want), len(want))
	}
}

// sameSlice reports two slices that differ.
func sameSlice[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// isErr reports err that is not (a wrap of) want.
func isErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error = %v, want %v", what, err, want)
	}
}

// must stops the case on an unexpected error.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// push pushes values (no TTL) to queue at now and returns the messages.
func push(t *testing.T, s broker.Store, queue string, now time.Time, values ...string) []broker.Message {
	t.Helper()
	msgs := make([]broker.NewMessage, len(values))
	for i, v := range values {
		msgs[i] = broker.NewMessage{Value: []byte(v)}
	}
	return pushMessages(t, s, queue, now, msgs...)
}

// pushMessages pushes msgs to queue at now and checks that as many came back.
func pushMessages(t *testing.T, s broker.Store, queue string, now time.Time, msgs ...broker.NewMessage) []broker.Message {
	t.Helper()
	got, err := s.QueuePush(t.Context(), broker.QueuePushParams{Queue: queue, Messages: msgs, Now: now})
	must(t, "QueuePush "+queue, err)
	if len(got) != len(msgs) {
		t.Fatalf("QueuePush %s returned %d messages, want %d", queue, len(got), len(msgs))
	}
	return got
}

// take takes one message, which must be there.
func take(t *testing.T, s broker.Store, queue string, now time.Time) broker.Message {
	t.Helper()
	m, err := s.QueueTake(t.Context(), queue, now)
	must(t, "QueueTake "+queue, err)
	return m
}

// peek peeks at one message, which must be there.
func peek(t *testing.T, s broker.Store, queue string, now time.Time) broker.Message {
	t.Helper()
	m, err := s.QueuePeek(t.Context(), queue, now)
	must(t, "QueuePeek "+queue, err)
	return m
}

// drain takes every deliverable message and returns their values in order.
func drain(t *testing.T, s broker.Store, queue string, now time.Time) []string {
	t.Helper()
	var values []string
	for range 10_000 {
		m, err := s.QueueTake(t.Context(), queue, now)
		if errors.Is(err, broker.ErrQueueEmpty) {
			return values
		}
		must(t, "QueueTake "+queue, err)
		values = append(values, string(m.Value))
	}
	t.Fatalf("QueueTake %s never reported ErrQueueEmpty", queue)
	return nil
}

// wantEmpty checks that Take and Peek find nothing deliverable at now.
func wantEmpty(t *testing.T, s broker.Store, queue string, now time.Time) {
	t.Helper()
	if m, err := s.QueuePeek(t.Context(), queue, now); !errors.Is(err, broker.ErrQueueEmpty) {
		t.Errorf("QueuePeek %s = %q, %v; want ErrQueueEmpty", queue, m.Value, err)
	}
	if m, err := s.QueueTake(t.Context(), queue, now); !errors.Is(err, broker.ErrQueueEmpty) {
		t.Errorf("QueueTake %s = %q, %v; want ErrQueueEmpty", queue, m.Value, err)
	}
}

// info returns the queue's state, which must exist.
func info(t *testing.T, s broker.Store, queue string) broker.QueueInfo {
	t.Helper()
	qi, err := s.QueueGet(t.Context(), queue)
	must(t, "QueueGet "+queue, err)
	return qi
}

// depth checks a queue's Length and InFlight.
// noQueue fails the test if queue exists.
func noQueue(t *testing.T, s broker.Store, queue string) {
	t.Helper()
	if qi, err := s.QueueGet(t.Context(), queue); !errors.Is(err, broker.ErrQueueNotFound) {
		t.Errorf("QueueGet %s: %+v, %v; want ErrQueueNotFound", queue, qi, err)
	}
}

func depth(t *testing.T, s broker.Store, queue string, length, inFlight int64) {
	t.Helper()
	qi := info(t, s, queue)
	if qi.Length != length || qi.InFlight != inFlight {
		t.Errorf("QueueGet %s: Length %d, InFlight %d; want %d, %d", queue, qi.Length, qi.InFlight, length, inFlight)
	}
}

// lease leases up to n messages of queue at now for visibility.
func lease(t *testing.T, s broker.Store, queue string, n int, now time.Time) []broker.Lease {
	t.Helper()
	ls, err := s.QueueLease(t.Context(), broker.QueueLeaseParams{Queue: queue, N: n, Visibility: visibility, Now: now})
	must(t, fmt.Sprintf("QueueLease %s N=%d", queue, n), err)
	return ls
}

// leaseOne leases exactly one message.
func leaseOne(t *testing.T, s broker.Store, queue string, now time.Time) broker.Lease {
	t.Helper()
	ls := lease(t, s, queue, 1, now)
	if len(ls) != 1 {
		t.Fatalf("QueueLease %s N=1 returned %d leases, want 1", queue, len(ls))
	}
	return ls[0]
}

// ack acks lease ids and returns those reported unknown.
func ack(t *testing.T, s broker.Store, queue string, ids ...string) []string {
	t.Helper()
	unknown, err := s.LeaseAck(t.Context(), queue, ids)
	must(t, "LeaseAck "+queue, err)
	return unknown
}

// nack nacks a lease with no delay and the given error and MaxAttempts.
func nack(t *testing.T, s broker.Store, l broker.Lease, now time.Time, msg string, maxAttempts int) bool {
	t.Helper()
	dead, err := s.LeaseNack(t.Context(), broker.LeaseNackParams{
		Queue: l.Message.Queue, LeaseID: l.ID, Error: msg, MaxAttempts: maxAttempts, Now: now,
	})
	must(t, "LeaseNack "+l.ID, err)
	return dead
}

// reap runs Reap at now with no binding limit.
func reap(t *testing.T, s broker.Store, now time.Time, maxAttempts int) broker.ReapResult {
	t.Helper()
	r, err := s.Reap(t.Context(), broker.ReapParams{Now: now, MaxAttempts: maxAttempts, Limit: reapLimit})
	must(t, "Reap", err)
	return r
}

// reapedNothing checks that a Reap result reports no work.
func reapedNothing(t *testing.T, r broker.ReapResult) {
	t.Helper()
	if len(r.Requeued) != 0 || len(r.DeadLettered) != 0 || r.Expired != 0 || r.More {
		t.Errorf("Reap = %+v, want nothing done", r)
	}
}

// pluck maps xs through f.
func pluck[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// ids are the messages' ids.
func ids(msgs []broker.Message) []uint64 {
	return pluck(msgs, func(m broker.Message) uint64 { return m.ID })
}

// leaseIDs are the leases' own ids.
func leaseIDs(ls []broker.Lease) []string {
	return pluck(ls, func(l broker.Lease) string { return l.ID })
}

// leasedIDs are the ids of the leased messages.
func leasedIDs(ls []broker.Lease) []uint64 {
	return pluck(ls, func(l broker.Lease) uint64 { return l.Message.ID })
}

// heartbeat says owner is alive until until.
func heartbeat(t *testing.T, s broker.Store, owner string, until time.Time) {
	t.Helper()
	must(t, "OwnerHeartbeat "+owner, s.OwnerHeartbeat(t.Context(), broker.OwnerParams{Owner: owner, Until: until}))
}

// leaseAs leases up to n messages of queue for owner.
func leaseAs(t *testing.T, s broker.Store, queue string, n int, now time.Time, owner string) []broker.Lease {
	t.Helper()
	ls, err := s.QueueLease(t.Context(), broker.QueueLeaseParams{Queue: queue, N: n, Visibility: visibility, Now: now, Owner: owner})
	must(t, "QueueLease "+queue+" as "+owner, err)
	return ls
}

// recoverAt runs LeaseRecover at now to completion and returns what it
// released, by queue.
func recoverAt(t *testing.T, s broker.Store, now time.Time) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range 1000 {
		res, err := s.LeaseRecover(t.Context(), broker.LeaseRecoverParams{Now: now, Limit: reapLimit})
		must(t, "LeaseRecover", err)
		for q, n := range res.Released {
			if n > 0 {
				out[q] += n
			}
		}
		if !res.More {
			return out
		}
	}
	t.Fatal("LeaseRecover always had more")
	return nil
}

// commit applies groups at base and returns their results.
func commit(t *testing.T, s broker.Store, groups ...broker.CommitGroup) []broker.CommitResult {
	t.Helper()
	res, err := s.Commit(t.Context(), broker.CommitParams{Groups: groups, Now: base})
	must(t, "Commit", err)
	if len(res) != len(groups) {
		t.Fatalf("Commit returned %d results for %d groups", len(res), len(groups))
	}
	return res
}

// recordScan scans records.
func recordScan(t *testing.T, s broker.Store, p broker.RecordScanParams) []broker.Record {
	t.Helper()
	got, err := s.RecordScan(t.Context(), p)
	must(t, "RecordScan "+p.Prefix, err)
	return got
}

func recordKeys(rs []broker.Record) []string {
	return pluck(rs, func(r broker.Record) string { return r.Key })
}

// sampleNames are queue names a store must keep apart: names that are
// prefixes of one another, that hold ':' (RestMQ's key separator), spaces,
// dots and text beyond ASCII, and an internal one.
var sampleNames = []string{"a", "a:1", "a:b", "a:b:1", "ab", "a b", "a.dead", "a.b", "é名前", "🙂", "job/1/map", "job/1/map:2", ":", "::1"}

// sortedNames is sampleNames in byte order.
func sortedNames() []string {
	out := slices.Clone(sampleNames)
	slices.Sort(out)
	return out
}
