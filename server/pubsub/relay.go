package pubsub

import (
	"cmp"
	"slices"
	"time"
)

// Relay connects a Hub to the Hubs of the other servers of one service, so
// that channels and presence span servers. The Hub tells it each event it
// makes (a message published here, a join or leave of a subscriber here),
// in order per channel, and when a channel gains its first subscriber here
// or loses its last (Watch, Unwatch); the relay hands the other servers'
// events to Deliver and lists the members they hold (Members). Send, Watch
// and Unwatch are called with a channel's lock held and must not block;
// Watch's channel closes once the other servers' events of the channel
// reach this one, and the first Subscribe to the channel waits for it (at
// most RelayWait), so that a subscriber gets everything published after
// its Subscribe returned, wherever it was published.
type Relay interface {
	Send(ev *Event)
	Watch(channel string) (ready <-chan struct{})
	Unwatch(channel string)
	Members(channel string) ([]Member, error)
}

// RelayWait bounds how long a Subscribe waits for its relay.
const RelayWait = 2 * time.Second

// SetRelay connects the Hub to a relay. Call it once, before the Hub is
// used.
func (h *Hub) SetRelay(r Relay) { h.relay = r }

// Deliver hands an event from another server to this Hub's members of its
// channel (none, if it has none here); it is not relayed again. The relay
// has checked the event's channel and sizes.
func (h *Hub) Deliver(e Event) int {
	ev := newEvent(e)
	h.mu.Lock()
	closed, ch := h.closed, h.channels[e.Channel]
	h.mu.Unlock()
	if closed || ch == nil {
		return 0
	}
	ch.mu.Lock()
	if ch.removed {
		ch.mu.Unlock()
		return 0
	}
	n := ch.send(ev, false)
	ch.unlock()
	return n
}

// relayed tells the relay about a local event; called with the channel's
// lock held.
func (h *Hub) relayed(ev *Event) {
	if h.relay != nil {
		h.relay.Send(ev)
	}
}

// remoteMembers merges the members other servers hold into local ones, in
// join order.
func (h *Hub) remoteMembers(name string, local []Member) ([]Member, error) {
	if h.relay == nil {
		return local, nil
	}
	remote, err := h.relay.Members(name)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(local))
	for _, m := range local {
		seen[m.ID] = true
	}
	out := local
	for _, m := range remote {
		if !seen[m.ID] {
			seen[m.ID] = true
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b Member) int {
		if c := a.Joined.Compare(b.Joined); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}
