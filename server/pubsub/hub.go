// Package pubsub is publish/subscribe with presence: a Hub of named channels
// whose subscribers receive every message published to their channel, and
// the joins and leaves of the other members. It knows nothing of HTTP or
// WebSockets; server/httpapi carries it over both.
//
// Delivery never waits for a subscriber: each has a bounded buffer of events,
// and one whose buffer is full when an event arrives is dropped (ErrSlow).
// Messages reach every member, their sender included, in publish order.
package pubsub

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Hub is a set of channels. Its methods are safe for concurrent use.
type Hub struct {
	cfg   Config
	relay Relay // nil: this server alone

	mu       sync.Mutex
	channels map[string]*channel
	closed   bool

	// subs counts Subscribers not yet closed by their owners; Close waits
	// for it to reach zero.
	subs sync.WaitGroup

	awayMu sync.Mutex // orders relayed messages of channels with no members here

	joins       atomic.Uint64 // numbers subscribers in join order
	subscribers atomic.Int64
	published   atomic.Int64
	delivered   atomic.Int64
	dropped     atomic.Int64
}

// New returns an empty Hub bounded by cfg, whose zero fields take defaults.
func New(cfg Config) *Hub {
	return &Hub{cfg: cfg.withDefaults(), channels: make(map[string]*channel)}
}

// Config returns the Hub's limits, defaults filled in.
func (h *Hub) Config() Config { return h.cfg }

// Subscribe makes a new member of the named channel and announces its join
// to every member, itself included: a subscriber's first event is its own
// join, which tells it its id. m describes the connection (RemoteAddr,
// UserAgent); the Hub sets its ID and Joined.
//
// It fails with an error wrapping broker.ErrInvalid for a bad channel name,
// ErrChannelFull, or ErrClosed.
func (h *Hub) Subscribe(name string, m Member) (*Subscriber, error) {
	if err := broker.CheckQueueName(name); err != nil {
		return nil, err
	}
	m.ID = newID()
	m.Joined = time.Now().UTC()
	m.Server = h.cfg.Server

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	ch := h.channels[name]
	if ch != nil {
		ch.mu.Lock()
		if ch.removed {
			ch.mu.Unlock()
			ch = nil
		}
	}
	opened := ch == nil
	if ch == nil {
		ch = &channel{hub: h, name: name, subs: make(map[string]*Subscriber)}
		h.channels[name] = ch
		ch.mu.Lock()
	}
	h.mu.Unlock()

	if len(ch.subs) >= h.cfg.MaxSubscribers {
		ch.mu.Unlock()
		return nil, fmt.Errorf("channel %s: %w (%d subscribers)", name, ErrChannelFull, h.cfg.MaxSubscribers)
	}
	var ready <-chan struct{}
	if opened && h.relay != nil {
		ready = h.relay.Watch(name)
	}
	s := &Subscriber{
		hub:    h,
		ch:     ch,
		member: m,
		seq:    h.joins.Add(1),
		events: make(chan *Event, h.cfg.Buffer),
		done:   make(chan struct{}),
	}
	ch.subs[m.ID] = s
	h.subscribers.Add(1)
	h.subs.Add(1)
	ch.send(newEvent(Event{Type: EventJoin, Channel: name, Member: m}), true)
	ch.unlock()
	if ready != nil {
		select {
		case <-ready:
		case <-time.After(RelayWait):
		}
	}
	return s, nil
}

// Publish sends a message to every current member of the named channel and
// returns how many here took it into their buffers; a channel nobody here
// subscribes to takes none. With a relay the message goes to the channel's
// members on the other servers as well. from names the sender: a subscriber's id, or FromHTTP. binary
// marks data that is not text (a binary frame); data that is not valid UTF-8
// is treated as binary too.
//
// It fails with an error wrapping broker.ErrInvalid for a bad channel name or
// data longer than Config.MaxMessage, or with ErrClosed.
func (h *Hub) Publish(name, from string, data []byte, binary bool) (int, error) {
	if err := broker.CheckQueueName(name); err != nil {
		return 0, err
	}
	if int64(len(data)) > h.cfg.MaxMessage {
		return 0, fmt.Errorf("%w: message of %d bytes exceeds the limit of %d", broker.ErrInvalid, len(data), h.cfg.MaxMessage)
	}
	ev := newEvent(Event{Type: EventMessage, Channel: name, From: from, Data: data, Binary: binary})

	h.mu.Lock()
	closed, ch := h.closed, h.channels[name]
	h.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	h.published.Add(1)
	if ch == nil {
		h.publishAway(name, ev)
		return 0, nil
	}
	ch.mu.Lock()
	if ch.removed {
		ch.mu.Unlock()
		h.publishAway(name, ev)
		return 0, nil
	}
	n := ch.send(ev, true)
	ch.unlock()
	return n, nil
}

// publishAway relays a message of a channel with no members here, under a
// lock of its own so that such messages keep their order too.
func (h *Hub) publishAway(name string, ev *Event) {
	if h.relay == nil {
		return
	}
	h.awayMu.Lock()
	h.relay.Send(ev)
	h.awayMu.Unlock()
}

// Members lists the named channel's subscribers in the order they joined,
// on every server when the Hub has a relay. A channel with no subscribers
// has an empty list.
func (h *Hub) Members(name string) ([]Member, error) {
	if err := broker.CheckQueueName(name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	ch := h.channels[name]
	h.mu.Unlock()
	var subs []*Subscriber
	if ch != nil {
		ch.mu.Lock()
		for _, s := range ch.subs {
			subs = append(subs, s)
		}
		ch.mu.Unlock()
	}
	slices.SortFunc(subs, func(a, b *Subscriber) int { return cmp.Compare(a.seq, b.seq) })
	members := make([]Member, len(subs))
	for i, s := range subs {
		members[i] = s.member
	}
	return h.remoteMembers(name, members)
}

// Close drops every subscriber with ErrClosed, without leave events, refuses
// further Subscribe and Publish calls, and waits until the owners of all
// subscribers have closed them. Transports watch Done, so Close returns once
// every connection has been told to go away.
func (h *Hub) Close() {
	h.mu.Lock()
	var chs []*channel
	if !h.closed {
		h.closed = true
		for _, ch := range h.channels {
			chs = append(chs, ch)
		}
		clear(h.channels)
	}
	h.mu.Unlock()
	for _, ch := range chs {
		ch.mu.Lock()
		ch.removed = true
		for _, s := range ch.subs {
			ch.remove(s, ErrClosed)
		}
		ch.mu.Unlock()
	}
	h.subs.Wait()
}

// newID returns a random subscriber id of 16 hex digits.
func newID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	return hex.EncodeToString(b[:])
}
