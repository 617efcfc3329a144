package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Watch calls fn after each change of a queue, made by this process or by
// any other on the same Redis and prefix (see broker.Store).
func (s *Store) Watch(fn func(broker.Event)) (stop func()) { return s.watch.Add(fn) }

// emitReply tells this process's watchers about the events a script
// reported (it has published them for the others).
func (s *Store) emitReply(v any) {
	blob, _ := v.(string)
	if blob == "" {
		return
	}
	_, evs, err := decodeEvents(blob)
	if err != nil {
		s.log.Error("events of a script", "err", err)
		s.watch.Notify(broker.Event{Kind: broker.EventResync})
		return
	}
	s.watch.Notify(evs...)
}

// feed is the subscription to the event channel: it hands other
// processes' events to the watchers, and when the subscription breaks and
// comes back (a Redis restart, a network fault) it announces EventResync,
// since events may have been missed meanwhile.
type feed struct {
	s      *Store
	ps     *redis.PubSub
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startFeed(s *Store) *feed {
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{s: s, ps: s.client.Subscribe(ctx, s.keys.channel()), cancel: cancel}
	f.wg.Add(1)
	go f.loop(ctx)
	return f
}

func (f *feed) loop(ctx context.Context) {
	defer f.wg.Done()
	subscribed := false
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		msg, err := f.ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.s.log.Warn("redis event feed broke; reconnecting", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if subscribed {
					f.s.log.Info("redis event feed back")
					f.s.watch.Notify(broker.Event{Kind: broker.EventResync})
				}
				subscribed = true
				backoff = 50 * time.Millisecond
			}
		case *redis.Message:
			f.deliver(m.Payload)
		}
	}
}

// deliver hands on another process's events; this process's own were
// told to its watchers when its script returned.
func (f *feed) deliver(blob string) {
	origin, evs, err := decodeEvents(blob)
	if err != nil {
		f.s.log.Error("redis event feed: unreadable event", "err", err)
		f.s.watch.Notify(broker.Event{Kind: broker.EventResync})
		return
	}
	if origin == f.s.origin {
		return
	}
	f.s.watch.Notify(evs...)
}

func (f *feed) close() {
	f.cancel()
	f.ps.Close()
	f.wg.Wait()
}
