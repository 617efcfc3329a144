package pubsub

import "sync"

// channel is the set of subscribers of one name. It exists while it has
// subscribers: the last one to leave removes it from the Hub.
//
// Lock order: Hub.mu may be held while taking channel.mu, never the reverse.
type channel struct {
	hub  *Hub
	name string

	mu   sync.Mutex
	subs map[string]*Subscriber
	// removed is set, under mu, when the channel lost its last subscriber or
	// the Hub closed; a removed channel takes no new subscribers and is (or
	// is about to be) gone from Hub.channels.
	removed bool
}

// send queues ev to every subscriber and returns how many took it. A
// subscriber whose buffer is full is dropped with ErrSlow and its leave is
// sent to the rest in turn. The relay is told of ev when relay is set (a
// local event) and of every such leave (a local subscriber left). Called
// with ch.mu held.
func (ch *channel) send(ev *Event, relay bool) (delivered int) {
	h := ch.hub
	pending := []*Event{ev}
	for i := 0; i < len(pending); i++ {
		if i > 0 || relay {
			h.relayed(pending[i])
		}
		n := 0
		for _, s := range ch.subs {
			select {
			case s.events <- pending[i]:
				n++
			default:
				ch.remove(s, ErrSlow)
				h.dropped.Add(1)
				pending = append(pending, newEvent(Event{Type: EventLeave, Channel: ch.name, Member: s.member}))
			}
		}
		h.delivered.Add(int64(n))
		if i == 0 {
			delivered = n
		}
	}
	return delivered
}

// remove takes s out of the channel, recording why in s.err and closing
// s.done, and reports whether s was a member. Called with ch.mu held.
func (ch *channel) remove(s *Subscriber, why error) bool {
	if ch.subs[s.member.ID] != s {
		return false
	}
	delete(ch.subs, s.member.ID)
	s.err = why
	close(s.done)
	ch.hub.subscribers.Add(-1)
	return true
}

// unlock releases ch.mu and, if the channel has no subscribers left, removes
// it from the Hub.
func (ch *channel) unlock() {
	empty := len(ch.subs) == 0 && !ch.removed
	if empty {
		ch.removed = true
	}
	if empty && ch.hub.relay != nil {
		ch.hub.relay.Unwatch(ch.name)
	}
	ch.mu.Unlock()
	if empty {
		h := ch.hub
		h.mu.Lock()
		if h.channels[ch.name] == ch {
			delete(h.channels, ch.name)
		}
		h.mu.Unlock()
	}
}
