package resp

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/kv"
	"github.com/tabreduce/tabreduce/server/pubsub"
)

// FromRESP is the From of messages published over this protocol, as
// WebSocket subscribers see it.
const FromRESP = "resp"

// subscription is one channel a connection subscribes to, with the
// goroutine that forwards its messages.
type subscription struct {
	sub  *pubsub.Subscriber
	stop chan struct{}
	once sync.Once
}

func (s *subscription) close() {
	s.once.Do(func() {
		close(s.stop)
		s.sub.Close()
	})
}

func (c *conn) publish(args []kv.Value) {
	ch, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	data, err := message(args[2])
	if err != nil {
		c.failErr(err)
		return
	}
	n, err := c.srv.deps.Hub.Publish(ch, FromRESP, data, !utf8.Valid(data))
	c.intOrErr(int64(n), err)
}

// subscribe joins channels; their messages arrive as pushes of
// ["message", channel, payload].
func (c *conn) subscribe(args []kv.Value) {
	chans, ok := c.namesOf(args[1:])
	if !ok {
		return
	}
	for _, ch := range chans {
		if c.subs[ch] == nil {
			if len(c.subs) >= c.srv.cfg.Limits.MaxSubscriptions {
				c.failErr(fmt.Errorf("%w: a connection subscribes to at most %d channels", broker.ErrInvalid, c.srv.cfg.Limits.MaxSubscriptions))
				return
			}
			sub, err := c.srv.deps.Hub.Subscribe(ch, pubsub.Member{RemoteAddr: c.nc.RemoteAddr().String(), UserAgent: "resp " + c.name})
			if err != nil {
				c.failErr(err)
				return
			}
			s := &subscription{sub: sub, stop: make(chan struct{})}
			c.subs[ch] = s
			c.fwd.Add(1)
			go c.forward(ch, s)
		}
		c.subscribed("subscribe", ch, len(c.subs))
	}
}

func (c *conn) subscribed(what, ch string, n int) {
	c.w.push(3)
	c.w.bulk(what)
	c.w.bulk(ch)
	c.w.integer(int64(n))
}

// unsubscribe leaves the named channels, or all of them.
func (c *conn) unsubscribe(args []kv.Value) {
	chans, ok := c.namesOf(args[1:])
	if !ok {
		return
	}
	if len(chans) == 0 {
		for ch := range c.subs {
			chans = append(chans, ch)
		}
		slices.Sort(chans)
	}
	if len(chans) == 0 {
		c.w.push(3)
		c.w.bulk("unsubscribe")
		c.w.null()
		c.w.integer(0)
		return
	}
	for _, ch := range chans {
		if s := c.subs[ch]; s != nil {
			s.close()
			delete(c.subs, ch)
		}
		c.subscribed("unsubscribe", ch, len(c.subs))
	}
}

// forward writes a subscription's messages to the client. A subscriber the
// hub drops for falling behind loses its connection, as Redis closes a
// subscriber whose output outgrows its limit.
func (c *conn) forward(ch string, s *subscription) {
	defer c.fwd.Done()
	for {
		select {
		case ev := <-s.sub.Events():
			c.wmu.Lock()
			c.writeEvent(ch, ev)
			for more := true; more; { // what else is waiting goes in the same write
				select {
				case ev := <-s.sub.Events():
					c.writeEvent(ch, ev)
				default:
					more = false
				}
			}
			err := c.flushLocked()
			c.wmu.Unlock()
			if err != nil {
				c.nc.Close()
				return
			}
		case <-s.sub.Done():
			if err := s.sub.Err(); errors.Is(err, pubsub.ErrSlow) || errors.Is(err, pubsub.ErrClosed) {
				c.srv.log.Info("resp subscriber dropped", "remote", c.nc.RemoteAddr().String(), "channel", ch, "err", err)
				c.nc.Close()
			}
			return
		case <-s.stop:
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// writeEvent writes a message event; joins and leaves are not part of
// Redis's pub/sub and are skipped.
func (c *conn) writeEvent(ch string, ev *pubsub.Event) {
	if ev.Type != pubsub.EventMessage {
		return
	}
	c.w.push(3)
	c.w.bulk("message")
	c.w.bulk(ch)
	c.w.message(ev.Data)
}
