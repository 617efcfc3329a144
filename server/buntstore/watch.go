package buntstore

import (
	"github.com/tabreduce/tabreduce/server/broker"
)

// Watch calls fn after each change of a queue (see broker.Store).
func (s *Store) Watch(fn func(broker.Event)) (stop func()) { return s.watch.Add(fn) }

// emit announces events to every watcher, after the transaction that made
// them.
func (s *Store) emit(events ...broker.Event) { s.watch.Notify(events...) }

// pushEvents returns an EventPush per queue of counts with a count above 0.
func pushEvents(counts map[string]int) []broker.Event {
	var out []broker.Event
	for q, n := range counts {
		if n > 0 {
			out = append(out, broker.Event{Kind: broker.EventPush, Queue: q})
		}
	}
	return out
}
