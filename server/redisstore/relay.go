package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/pubsub"
)

// Relay carries a pubsub.Hub's channels and presence across every server
// on one Redis and prefix. A message, join or leave made on one server is
// published on the Redis channel {P}:ps:<channel>, to which each server
// with members of that channel here is subscribed; each hands the others'
// events to its Hub. Presence is a sorted set per channel of member ids
// scored by when each stops counting (now + presenceTTL, renewed three
// times as often by the member's server): a server that dies stops
// renewing, and the next server to look drops its members and announces
// their leaves.
//
//	{P}:ps:<channel>              pub/sub channel of the channel's events
//	{P}:{ps<channel>}:m           ZSET member id → alive until (ms)
//	{P}:{ps<channel>}:i           HASH member id → member (JSON)
type Relay struct {
	s      *Store
	hub    *pubsub.Hub
	maxMsg int64
	log    *slog.Logger

	ops chan relayOp
	ps  *redis.PubSub

	ttl, every time.Duration // presence: how long a member counts, how often renewed

	mu      sync.Mutex
	local   map[string]map[string]pubsub.Member // channel → members here
	waiting map[string][]chan struct{}          // Watch calls not confirmed yet
	closed  bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ pubsub.Relay = (*Relay)(nil)

// Relay timing and bounds.
const (
	presenceTTL   = 15 * time.Second // renewed every third of it
	relayQueue    = 8192             // events waiting to be published; more are dropped
	relayBatch    = 256              // events one pipeline publishes
	maxMemberText = 1024             // bytes of a member's address or user agent from another server
)

type relayOp struct {
	kind    byte // 'e' event, 'o' open, 'c' close
	channel string
	ev      *pubsub.Event
}

// wireEvent is an event as the relay publishes it.
type wireEvent struct {
	Origin string           `json:"o"`
	Type   pubsub.EventType `json:"t"`
	From   string           `json:"f,omitempty"`
	Data   []byte           `json:"d,omitempty"`
	Binary bool             `json:"b,omitempty"`
	Member *pubsub.Member   `json:"m,omitempty"`
}

// NewRelay connects hub to the other servers' hubs and starts the relay's
// goroutines; Close stops them.
func (s *Store) NewRelay(hub *pubsub.Hub) *Relay {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		s: s, hub: hub, maxMsg: hub.Config().MaxMessage, log: s.log,
		ops: make(chan relayOp, relayQueue), local: map[string]map[string]pubsub.Member{},
		waiting: map[string][]chan struct{}{},
		ttl:     s.presenceTTL, every: s.presenceTTL / 3,
		ctx: ctx, cancel: cancel,
	}
	// Subscribed from the start to a channel no one publishes on, so that
	// the connection waits in subscriber mode until channels are added.
	r.ps = s.client.Subscribe(ctx, s.keys.prefix+":ps")
	hub.SetRelay(r)
	r.wg.Add(3)
	go r.sendLoop()
	go r.receiveLoop()
	go r.presenceLoop()
	return r
}

func (r *Relay) channelKey(ch string) string { return r.s.keys.prefix + ":ps:" + ch }
func (r *Relay) presence(ch string) (members, info string) {
	t := r.s.keys.prefix + ":{ps" + escapeTag(ch) + "}"
	return t + ":m", t + ":i"
}

func (r *Relay) enqueue(op relayOp) {
	select {
	case r.ops <- op:
	default:
		r.log.Warn("pub/sub relay behind: an event for other servers was dropped", "channel", op.channel)
	}
}

// Send queues a local event for the other servers; a join or leave also
// changes the channel's presence.
func (r *Relay) Send(ev *pubsub.Event) {
	r.mu.Lock()
	closed := r.closed
	if !closed {
		switch ev.Type {
		case pubsub.EventJoin:
			if r.local[ev.Channel] == nil {
				r.local[ev.Channel] = map[string]pubsub.Member{}
			}
			r.local[ev.Channel][ev.Member.ID] = ev.Member
		case pubsub.EventLeave:
			delete(r.local[ev.Channel], ev.Member.ID)
			if len(r.local[ev.Channel]) == 0 {
				delete(r.local, ev.Channel)
			}
		}
	}
	r.mu.Unlock()
	if !closed {
		r.enqueue(relayOp{kind: 'e', channel: ev.Channel, ev: ev})
	}
}

// Watch subscribes to a channel that has members here now; ready closes
// when Redis has confirmed the subscription.
func (r *Relay) Watch(channel string) <-chan struct{} {
	ready := make(chan struct{})
	r.mu.Lock()
	r.waiting[channel] = append(r.waiting[channel], ready)
	r.mu.Unlock()
	r.enqueue(relayOp{kind: 'o', channel: channel})
	return ready
}

// subscribed closes the waits of a channel whose subscription Redis
// confirmed.
func (r *Relay) subscribed(redisChannel string) {
	ch, ok := strings.CutPrefix(redisChannel, r.s.keys.prefix+":ps:")
	if !ok {
		return
	}
	r.mu.Lock()
	waits := r.waiting[ch]
	delete(r.waiting, ch)
	r.mu.Unlock()
	for _, w := range waits {
		close(w)
	}
}

// Unwatch unsubscribes from a channel that has no members here any more.
func (r *Relay) Unwatch(channel string) { r.enqueue(relayOp{kind: 'c', channel: channel}) }

// sendLoop publishes queued events in order, a batch per pipeline, and
// keeps presence and subscriptions in step with them.
func (r *Relay) sendLoop() {
	defer r.wg.Done()
	for {
		var batch []relayOp
		select {
		case <-r.ctx.Done():
			return
		case op := <-r.ops:
			batch = append(batch, op)
		}
	more:
		for len(batch) < relayBatch {
			select {
			case op := <-r.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		if err := r.flush(batch); err != nil && r.ctx.Err() == nil {
			r.log.Warn("pub/sub relay: publish to other servers", "events", len(batch), "err", err)
		}
	}
}

// flush runs a batch in order: the events between two subscription
// changes go out in one pipeline.
func (r *Relay) flush(batch []relayOp) error {
	ctx := r.ctx
	for len(batch) > 0 {
		n := 0
		for n < len(batch) && batch[n].kind == 'e' {
			n++
		}
		if n > 0 {
			events := batch[:n]
			if _, err := r.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, op := range events {
					r.publish(ctx, p, op.ev)
				}
				return nil
			}); err != nil {
				return r.s.mapErr(err)
			}
			batch = batch[n:]
			continue
		}
		var err error
		if batch[0].kind == 'o' {
			err = r.ps.Subscribe(ctx, r.channelKey(batch[0].channel))
		} else {
			err = r.ps.Unsubscribe(ctx, r.channelKey(batch[0].channel))
		}
		if err != nil {
			return r.s.mapErr(err)
		}
		batch = batch[1:]
	}
	return nil
}

// publish adds one event, and its presence change, to a pipeline.
func (r *Relay) publish(ctx context.Context, p redis.Pipeliner, ev *pubsub.Event) {
	w := wireEvent{Origin: r.s.origin, Type: ev.Type}
	members, info := r.presence(ev.Channel)
	switch ev.Type {
	case pubsub.EventMessage:
		w.From, w.Data, w.Binary = ev.From, ev.Data, ev.Binary
	case pubsub.EventJoin:
		m := ev.Member
		w.Member = &m
		text, _ := json.Marshal(m)
		p.HSet(ctx, info, m.ID, text)
		p.ZAdd(ctx, members, redis.Z{Score: float64(time.Now().Add(r.ttl).UnixMilli()), Member: m.ID})
		p.PExpire(ctx, members, 2*r.ttl)
		p.PExpire(ctx, info, 2*r.ttl)
	case pubsub.EventLeave:
		m := ev.Member
		w.Member = &m
		p.ZRem(ctx, members, m.ID)
		p.HDel(ctx, info, m.ID)
	}
	text, _ := json.Marshal(w)
	p.Publish(ctx, r.channelKey(ev.Channel), text)
}

// receiveLoop hands the other servers' events to the Hub.
func (r *Relay) receiveLoop() {
	defer r.wg.Done()
	for r.ctx.Err() == nil {
		msg, err := r.ps.Receive(r.ctx)
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				r.subscribed(m.Channel)
			}
		case *redis.Message:
			if err := r.deliver(m.Channel, m.Payload); err != nil {
				r.log.Warn("pub/sub relay: event from another server refused", "err", err)
			}
		}
	}
}

// deliver checks one published event and gives it to the Hub.
func (r *Relay) deliver(redisChannel, payload string) error {
	ch, ok := strings.CutPrefix(redisChannel, r.s.keys.prefix+":ps:")
	if !ok {
		return fmt.Errorf("channel %q", redisChannel)
	}
	if err := broker.CheckQueueName(ch); err != nil {
		return err
	}
	var w wireEvent
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return fmt.Errorf("channel %s: %w", ch, err)
	}
	if w.Origin == r.s.origin {
		return nil
	}
	ev := pubsub.Event{Type: w.Type, Channel: ch}
	switch w.Type {
	case pubsub.EventMessage:
		if int64(len(w.Data)) > r.maxMsg || len(w.From) > 64 {
			return fmt.Errorf("channel %s: message of %d bytes", ch, len(w.Data))
		}
		ev.From, ev.Data, ev.Binary = w.From, w.Data, w.Binary
	case pubsub.EventJoin, pubsub.EventLeave:
		if w.Member == nil || !validMember(*w.Member) {
			return fmt.Errorf("channel %s: %s without a valid member", ch, w.Type)
		}
		ev.Member = *w.Member
	default:
		return fmt.Errorf("channel %s: event type %q", ch, w.Type)
	}
	r.hub.Deliver(ev)
	return nil
}

func validMember(m pubsub.Member) bool {
	return m.ID != "" && len(m.ID) <= 64 && len(m.RemoteAddr) <= maxMemberText &&
		len(m.UserAgent) <= maxMemberText && len(m.Server) <= maxMemberText
}

// Members lists the members of a channel that other servers hold and
// still renew.
func (r *Relay) Members(channel string) ([]pubsub.Member, error) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	members, info := r.presence(channel)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ids, err := r.s.client.ZRangeByScore(ctx, members, &redis.ZRangeBy{Min: "(" + now, Max: "+inf", Count: int64(r.hub.Config().MaxSubscribers)}).Result()
	if err != nil || len(ids) == 0 {
		return nil, r.s.mapErr(err)
	}
	texts, err := r.s.client.HMGet(ctx, info, ids...).Result()
	if err != nil {
		return nil, r.s.mapErr(err)
	}
	var out []pubsub.Member
	for _, t := range texts {
		s, ok := t.(string)
		if !ok {
			continue // left meanwhile
		}
		var m pubsub.Member
		if json.Unmarshal([]byte(s), &m) != nil || !validMember(m) {
			continue
		}
		if server := r.hub.Config().Server; server != "" && m.Server == server {
			continue // the Hub lists its own
		}
		out = append(out, m)
	}
	return out, nil
}

// presenceLoop renews this server's members and drops those no server
// renews any more, every third of the presence TTL.
func (r *Relay) presenceLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		if err := r.renew(); err != nil && r.ctx.Err() == nil {
			r.log.Warn("pub/sub presence", "err", err)
		}
	}
}

func (r *Relay) renew() error {
	ctx := r.ctx
	r.mu.Lock()
	local := make(map[string][]string, len(r.local))
	for ch, ms := range r.local {
		for id := range ms {
			local[ch] = append(local[ch], id)
		}
	}
	r.mu.Unlock()
	until := float64(time.Now().Add(r.ttl).UnixMilli())
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for ch, ids := range local {
		members, info := r.presence(ch)
		zs := make([]redis.Z, len(ids))
		for i, id := range ids {
			zs[i] = redis.Z{Score: until, Member: id}
		}
		var gone *redis.StringSliceCmd
		if _, err := r.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ZAddXX(ctx, members, zs...)
			p.PExpire(ctx, members, 2*r.ttl)
			p.PExpire(ctx, info, 2*r.ttl)
			gone = p.ZRangeByScore(ctx, members, &redis.ZRangeBy{Min: "-inf", Max: now, Count: 1000})
			return nil
		}); err != nil {
			return r.s.mapErr(err)
		}
		for _, id := range gone.Val() {
			r.expire(ctx, ch, id)
		}
	}
	return nil
}

// expire drops a member whose server stopped renewing it and announces
// its leave, here and to the others; of several servers that find it at
// once, the one whose ZREM removes it announces.
func (r *Relay) expire(ctx context.Context, ch, id string) {
	members, info := r.presence(ch)
	text, _ := r.s.client.HGet(ctx, info, id).Result()
	n, err := r.s.client.ZRem(ctx, members, id).Result()
	if err != nil || n != 1 {
		return
	}
	r.s.client.HDel(ctx, info, id)
	m := pubsub.Member{ID: id}
	if text != "" {
		_ = json.Unmarshal([]byte(text), &m)
	}
	if !validMember(m) {
		m = pubsub.Member{ID: id}
	}
	ev := pubsub.Event{Type: pubsub.EventLeave, Channel: ch, Member: m}
	r.hub.Deliver(ev)
	w, _ := json.Marshal(wireEvent{Origin: r.s.origin, Type: pubsub.EventLeave, Member: &m})
	r.s.client.Publish(ctx, r.channelKey(ch), w)
}

// stop ends the relay's goroutines without withdrawing anything, as a
// crash would.
func (r *Relay) stop() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.ps.Close()
	r.wg.Wait()
}

// Close withdraws this server's members (announcing their leaves to the
// other servers) and stops the relay.
func (r *Relay) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	local := r.local
	r.local = nil
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = r.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for ch, ms := range local {
			members, info := r.presence(ch)
			for _, m := range ms {
				p.ZRem(ctx, members, m.ID)
				p.HDel(ctx, info, m.ID)
				w, _ := json.Marshal(wireEvent{Origin: r.s.origin, Type: pubsub.EventLeave, Member: &m})
				p.Publish(ctx, r.channelKey(ch), w)
			}
		}
		return nil
	})
	r.cancel()
	r.ps.Close()
	r.wg.Wait()
}
