package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// queueCases pin down a queue's state: get, list, status, policy, purge and
// deleting one message.
func queueCases() []storeCase {
	cases := []storeCase{
		{"GetUnknown", func(t *testing.T, s broker.Store) {
			_, err := s.QueueGet(t.Context(), "nosuch")
			isErr(t, "QueueGet nosuch", err, broker.ErrQueueNotFound)
		}},
		{"ListEmptyStore", func(t *testing.T, s broker.Store) {
			equal(t, "queues in a new store", len(list(t, s)), 0)
		}},
		{"ListSortedByName", func(t *testing.T, s broker.Store) {
			push(t, s, "beta", base, "1", "2")
			push(t, s, "alpha", base, "1")
			push(t, s, "gamma", base, "1", "2", "3")
			qs := list(t, s)
			sameSlice(t, "listed names", names(qs), []string{"alpha", "beta", "gamma"})
			for i, want := range []int64{1, 2, 3} {
				if i < len(qs) {
					equal(t, qs[i].Name+" Length", qs[i].Length, want)
				}
			}
		}},
		{"PurgeRemovesEverything", func(t *testing.T, s broker.Store) {
			pushMessages(t, s, "q", base,
				broker.NewMessage{Value: []byte("a")},
				broker.NewMessage{Value: []byte("b"), TTL: time.Minute},
				broker.NewMessage{Value: []byte("c")},
			)
			ls := lease(t, s, "q", 2, base)
			l := ls[0]
			nackLater(t, s, ls[1], base, time.Minute, "held back")
			push(t, s, "other", base, "x")
			must(t, "QueuePurge", s.QueuePurge(t.Context(), "q"))

			_, err := s.QueueGet(t.Context(), "q")
			isErr(t, "QueueGet after purge", err, broker.ErrQueueNotFound)
			sameSlice(t, "listed names after purge", names(list(t, s)), []string{"other"})
			wantEmpty(t, s, "q", base)
			sameSlice(t, "unknown after acking a purged lease", ack(t, s, "q", l.ID), []string{l.ID})
			// Nothing orphaned: no lease to requeue, no message to expire, and
			// Reap does not bring the queue back.
			reapedNothing(t, reap(t, s, at(time.Hour), manyAttempt))
			_, err = s.QueueGet(t.Context(), "q")
			isErr(t, "QueueGet after purge and reap", err, broker.ErrQueueNotFound)
			sameSlice(t, "other queue after purge", drain(t, s, "other", base), []string{"x"})
		}},
		{"PurgeUnknownIsNil", func(t *testing.T, s broker.Store) {
			must(t, "QueuePurge nosuch", s.QueuePurge(t.Context(), "nosuch"))
			_, err := s.QueueGet(t.Context(), "nosuch")
			isErr(t, "QueueGet after purging an unknown queue", err, broker.ErrQueueNotFound)
		}},
		{"PushAfterPurge", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			must(t, "QueuePurge", s.QueuePurge(t.Context(), "q"))
			push(t, s, "q", at(time.Minute), "c")
			qi := info(t, s, "q")
			equal(t, "Length after purge and push", qi.Length, 1)
			equal(t, "Pushed (totals restart with the queue)", qi.Pushed, 1)
			sameTime(t, "Created (the push after purge)", qi.Created, at(time.Minute))
			sameSlice(t, "taken after purge and push", drain(t, s, "q", base), []string{"c"})
		}},
		{"ClearKeepsStateAndIDs", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d")
			ls := lease(t, s, "q", 2, base)
			nackLater(t, s, ls[1], base, time.Minute, "held back")
			must(t, "QueueSetStatus", s.QueueSetStatus(t.Context(), "q", broker.StatusPaused))
			must(t, "QueueSetPolicy", s.QueueSetPolicy(t.Context(), "q", broker.PolicyRoundRobin))
			n, err := s.QueueClear(t.Context(), "q")
			must(t, "QueueClear", err)
			equal(t, "messages cleared (ready, delayed, leased)", n, 4)
			qi := info(t, s, "q")
			equal(t, "Length after clear", qi.Length, 0)
			equal(t, "InFlight after clear", qi.InFlight, 0)
			equal(t, "Status kept", qi.Status, broker.StatusPaused)
			equal(t, "Policy kept", qi.Policy, broker.PolicyRoundRobin)
			equal(t, "Pushed kept", qi.Pushed, 4)
			sameSlice(t, "unknown after acking a cleared lease", ack(t, s, "q", ls[0].ID), []string{ls[0].ID})
			reapedNothing(t, reap(t, s, at(time.Hour), manyAttempt))
			sameSlice(t, "id after clear", ids(push(t, s, "q", base, "e")), []uint64{5})
			must(t, "QueueSetStatus", s.QueueSetStatus(t.Context(), "q", broker.StatusActive))
			sameSlice(t, "taken after clear and push", drain(t, s, "q", base), []string{"e"})
		}},
		{"ClearUnknownCreatesNothing", func(t *testing.T, s broker.Store) {
			n, err := s.QueueClear(t.Context(), "nosuch")
			must(t, "QueueClear nosuch", err)
			equal(t, "messages cleared", n, 0)
			_, err = s.QueueGet(t.Context(), "nosuch")
			isErr(t, "QueueGet after clearing an unknown queue", err, broker.ErrQueueNotFound)
		}},
		{"DeleteReadyMessage", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			must(t, "MessageDelete q 2", s.MessageDelete(t.Context(), "q", 2))
			depth(t, s, "q", 2, 0)
			sameSlice(t, "taken after delete", drain(t, s, "q", base), []string{"a", "c"})
		}},
		{"DeleteLeasedMessage", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			l := leaseOne(t, s, "q", base)
			must(t, "MessageDelete of the leased message", s.MessageDelete(t.Context(), "q", l.Message.ID))
			depth(t, s, "q", 1, 0)
			sameSlice(t, "unknown after acking a deleted message's lease", ack(t, s, "q", l.ID), []string{l.ID})
			reapedNothing(t, reap(t, s, at(time.Hour), manyAttempt))
			sameSlice(t, "taken after delete", drain(t, s, "q", base), []string{"b"})
		}},
		{"DeleteUnknown", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			isErr(t, "MessageDelete of an unknown id", s.MessageDelete(t.Context(), "q", 99), broker.ErrMessageNotFound)
			isErr(t, "MessageDelete in an unknown queue", s.MessageDelete(t.Context(), "nosuch", 1), broker.ErrMessageNotFound)
			must(t, "MessageDelete q 1", s.MessageDelete(t.Context(), "q", 1))
			isErr(t, "MessageDelete twice", s.MessageDelete(t.Context(), "q", 1), broker.ErrMessageNotFound)
		}},
	}
	for _, st := range settings {
		cases = append(cases, storeCase{"Set" + st.name + "CreatesAndPersists", func(t *testing.T, s broker.Store) {
			ctx := t.Context()
			must(t, "QueueSet"+st.name, st.set(ctx, s, "q", st.other))
			qi := info(t, s, "q")
			for _, o := range settings {
				want := o.def
				if o.name == st.name {
					want = st.other
				}
				equal(t, o.name+" of a queue made by QueueSet"+st.name, o.get(qi), want)
			}
			equal(t, "Length of a queue made by QueueSet"+st.name, qi.Length, 0)
			sameSlice(t, "listed names", names(list(t, s)), []string{"q"})
			push(t, s, "q", base, "a")
			equal(t, st.name+" after push", st.get(info(t, s, "q")), st.other)
			must(t, "QueueSet"+st.name+" back", st.set(ctx, s, "q", st.def))
			qi = info(t, s, "q")
			equal(t, st.name+" set back", st.get(qi), st.def)
			equal(t, "Length after setting back", qi.Length, 1)
		}})
	}
	return cases
}

// settings are a queue's two settings: each has a default and another value.
var settings = []struct {
	name       string
	set        func(ctx context.Context, s broker.Store, queue, value string) error
	get        func(broker.QueueInfo) string
	def, other string
}{
	{"Status", func(ctx context.Context, s broker.Store, queue, value string) error {
		return s.QueueSetStatus(ctx, queue, broker.Status(value))
	}, func(qi broker.QueueInfo) string { return string(qi.Status) }, string(broker.StatusActive), string(broker.StatusPaused)},
	{"Policy", func(ctx context.Context, s broker.Store, queue, value string) error {
		return s.QueueSetPolicy(ctx, queue, broker.Policy(value))
	}, func(qi broker.QueueInfo) string { return string(qi.Policy) }, string(broker.DefaultPolicy), string(broker.PolicyRoundRobin)},
}

// list returns every queue's state.
func list(t *testing.T, s broker.Store) []broker.QueueInfo {
	t.Helper()
	qs, err := s.QueueList(t.Context())
	must(t, "QueueList", err)
	return qs
}

// names are the queues' names.
func names(qs []broker.QueueInfo) []string {
	return pluck(qs, func(q broker.QueueInfo) string { return q.Name })
}
