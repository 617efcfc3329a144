package buntstore

import (
	"sync"

	"github.com/tabreduce/tabreduce/server/broker"
)

// watchers are the functions Watch registered; every change a transaction
// commits is announced to each, after the transaction.
type watchers struct {
	mu  sync.RWMutex
	seq uint64
	fns map[uint64]func(broker.Event)
}

// Watch calls fn after each change of a queue (see broker.Store).
func (s *Store) Watch(fn func(broker.Event)) (stop func()) {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[uint64]func(broker.Event){}
	}
	w.seq++
	id := w.seq
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		delete(w.fns, id)
		w.mu.Unlock()
	}
}

// emit announces events to every watcher.
func (s *Store) emit(events ...broker.Event) {
	if len(events) == 0 {
		return
	}
	w := &s.watch
	w.mu.RLock()
	fns := make([]func(broker.Event), 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	w.mu.RUnlock()
	for _, fn := range fns {
		for _, ev := range events {
			fn(ev)
		}
	}
}

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
