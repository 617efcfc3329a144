package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// eventLog collects the events a store announces.
type eventLog struct {
	mu  sync.Mutex
	evs []broker.Event
}

func watch(t *testing.T, s broker.Store) *eventLog {
	t.Helper()
	l := &eventLog{}
	stop := s.Watch(func(ev broker.Event) {
		l.mu.Lock()
		l.evs = append(l.evs, ev)
		l.mu.Unlock()
	})
	t.Cleanup(stop)
	return l
}

// take returns the events so far and forgets them.
func (l *eventLog) take() []broker.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.evs
	l.evs = nil
	return out
}

// want checks that every event in want was announced since the last call
// (more events may have been: they are hints), within a second, since a
// shared store may announce a change on a feed of its own.
func (l *eventLog) want(t *testing.T, what string, want ...broker.Event) {
	t.Helper()
	var got []broker.Event
	deadline := time.Now().Add(time.Second)
	for {
		got = append(got, l.take()...)
		missing := slices.DeleteFunc(slices.Clone(want), func(w broker.Event) bool { return slices.Contains(got, w) })
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: events %v were not announced (got %v)", what, missing, got)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventCases pin down Watch: each change a consumer may care about is
// announced, whichever method made it.
func eventCases() []storeCase {
	ev := func(k broker.EventKind, q string) broker.Event { return broker.Event{Kind: k, Queue: q} }
	return []storeCase{
		{"Pushes", func(t *testing.T, s broker.Store) {
			l := watch(t, s)
			push(t, s, "a:b", base, "x")
			l.want(t, "QueuePush", ev(broker.EventPush, "a:b"))
			commit(t, s, broker.CommitGroup{Pushes: []broker.QueuePush{
				{Queue: "job/1/part/0", Messages: []broker.NewMessage{{Value: []byte("r")}}},
				{Queue: "out", Messages: []broker.NewMessage{{Value: []byte("o")}}},
			}})
			l.want(t, "Commit", ev(broker.EventPush, "job/1/part/0"), ev(broker.EventPush, "out"))
		}},
		{"Returns", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c", "d")
			ls := lease(t, s, "q", 4, base)
			l := watch(t, s)
			_, err := s.LeaseRelease(t.Context(), "q", []string{ls[0].ID})
			must(t, "LeaseRelease", err)
			l.want(t, "LeaseRelease", ev(broker.EventPush, "q"))
			nack(t, s, ls[1], base, "again", manyAttempt)
			l.want(t, "LeaseNack", ev(broker.EventPush, "q"))
			nack(t, s, ls[2], base, "fatal", 1)
			l.want(t, "LeaseNack to the dead-letter queue", ev(broker.EventPush, "q.dead"))
			reap(t, s, at(2*visibility), manyAttempt)
			l.want(t, "Reap", ev(broker.EventPush, "q"))
		}},
		{"RecoveredLeases", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a")
			leaseAs(t, s, "q", 1, base, "gone")
			l := watch(t, s)
			recoverAt(t, s, base)
			l.want(t, "LeaseRecover", ev(broker.EventPush, "q"))
		}},
		{"StateAndPurge", func(t *testing.T, s broker.Store) {
			l := watch(t, s)
			must(t, "QueueSetStatus", s.QueueSetStatus(t.Context(), "q", broker.StatusPaused))
			must(t, "QueueSetPolicy", s.QueueSetPolicy(t.Context(), "r", broker.PolicyBroadcast))
			must(t, "QueuePurge", s.QueuePurge(t.Context(), "q"))
			_, err := s.FlushPublic(t.Context())
			must(t, "FlushPublic", err)
			l.want(t, "state changes", ev(broker.EventState, "q"), ev(broker.EventState, "r"),
				ev(broker.EventPurge, "q"), ev(broker.EventFlush, ""))
		}},
		{"StopEndsTheWatch", func(t *testing.T, s broker.Store) {
			l := &eventLog{}
			stop := s.Watch(func(ev broker.Event) {
				l.mu.Lock()
				l.evs = append(l.evs, ev)
				l.mu.Unlock()
			})
			stop()
			push(t, s, "q", base, "a")
			if got := l.take(); len(got) != 0 {
				t.Errorf("events after stop: %v", got)
			}
		}},
	}
}
