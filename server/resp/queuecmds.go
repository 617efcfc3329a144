package resp

import (
	"errors"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/kv"
)

// The list commands run on the broker's queues, which are first in, first
// out: LPUSH and RPUSH both append, and LPOP and RPOP both take the oldest
// message (a hard get), so both of Redis's queue idioms (LPUSH with RPOP,
// RPUSH with LPOP) behave as they do in Redis, and a message pushed here is
// the one GET /q/{queue} returns, and the other way round.

// maxBlockQueues bounds the queues one BLPOP waits on.
const maxBlockQueues = 64

// message writes a queue message or a pub/sub payload: bytes, or text in
// the seed's dialect when it is UTF-8.
func (w *writer) message(b []byte) {
	if w.dialect == seed && utf8.Valid(b) {
		w.text(string(b))
		return
	}
	w.bulk(string(b))
}

// push is LPUSH and RPUSH: append the values, answer the queue's length.
func (c *conn) push(args []kv.Value) {
	q, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	msgs := make([]broker.NewMessage, len(args)-2)
	for i, a := range args[2:] {
		var err error
		if msgs[i].Value, err = message(a); err != nil {
			c.failErr(err)
			return
		}
	}
	b := c.srv.deps.Broker
	if _, err := b.Push(c.ctx, q, msgs); err != nil {
		c.failErr(err)
		return
	}
	st, err := b.Stats(c.ctx, q)
	c.intOrErr(st.Length, err)
}

// pop is LPOP and RPOP [count]: take the oldest message, or up to count.
func (c *conn) pop(args []kv.Value) {
	if len(args) > 3 {
		c.failErr(errSyntax)
		return
	}
	q, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	b := c.srv.deps.Broker
	if len(args) == 2 {
		m, err := b.Take(c.ctx, q)
		switch {
		case errors.Is(err, broker.ErrQueueEmpty):
			c.w.null()
		case err != nil:
			c.failErr(err)
		default:
			c.w.message(m.Value)
		}
		return
	}
	n, err := integer(args[2])
	if err != nil || n < 0 {
		c.fail("ERR", "value is out of range, must be positive")
		return
	}
	var out [][]byte
	for int64(len(out)) < min(n, int64(c.srv.cfg.Limits.MaxElements)) {
		m, err := b.Take(c.ctx, q)
		if errors.Is(err, broker.ErrQueueEmpty) {
			break
		}
		if err != nil && len(out) == 0 {
			c.failErr(err)
			return
		}
		if err != nil {
			break // answer what was taken: it is out of the queue
		}
		out = append(out, m.Value)
	}
	if len(out) == 0 && n > 0 {
		c.w.nullArray()
		return
	}
	c.w.array(len(out))
	for _, v := range out {
		c.w.message(v)
	}
}

func (c *conn) llen(args []kv.Value) {
	q, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	st, err := c.srv.deps.Broker.Stats(c.ctx, q)
	if errors.Is(err, broker.ErrQueueNotFound) {
		c.w.integer(0)
		return
	}
	c.intOrErr(st.Length, err)
}

// bpop is BLPOP and BRPOP queue... timeout: the oldest message of the first
// queue that has one, waiting up to timeout seconds (0: Limits.MaxBlock).
// While it waits it is a live consumer of every queue, as a COMET client
// is: a message stays leased until its reply is written, and returns to
// the head of its queue if the client has gone.
func (c *conn) bpop(args []kv.Value) {
	queues, err := names(args[1 : len(args)-1])
	if err != nil {
		c.failErr(err)
		return
	}
	if len(queues) > maxBlockQueues {
		c.failErr(fmt.Errorf("%w: BLPOP waits on at most %d queues", broker.ErrInvalid, maxBlockQueues))
		return
	}
	secs, err := seconds(args[len(args)-1])
	if err != nil {
		c.failErr(err)
		return
	}
	if secs < 0 {
		c.fail("ERR", "timeout is negative")
		return
	}
	wait := c.srv.cfg.Limits.MaxBlock
	if secs > 0 && secs < wait.Seconds() {
		wait = time.Duration(secs * float64(time.Second))
	}
	b := c.srv.deps.Broker
	for _, q := range queues {
		m, err := b.Take(c.ctx, q)
		switch {
		case err == nil:
			c.popped(q, m.Value)
			return
		case !errors.Is(err, broker.ErrQueueEmpty) && !errors.Is(err, broker.ErrQueuePaused):
			c.failErr(err)
			return
		}
	}
	c.block(queues, wait)
}

func (c *conn) popped(q string, v []byte) {
	c.w.array(2)
	c.w.bulk(q)
	c.w.message(v)
}

// block waits as a live consumer of queues for up to wait.
func (c *conn) block(queues []string, wait time.Duration) {
	b := c.srv.deps.Broker
	consumers := make([]*broker.Consumer, 0, len(queues))
	defer func() {
		for _, cons := range consumers {
			cons.Close() // what a consumer was handed and did not report goes back
		}
	}()
	for _, q := range queues {
		cons, err := b.Subscribe(q, broker.SubscribeOptions{Prefetch: 1, Pop: true})
		if err != nil {
			c.failErr(err)
			return
		}
		consumers = append(consumers, cons)
	}
	// Pub/sub forwarders may write while this waits; nothing of this
	// command is buffered yet.
	c.unlock()
	gone, stopWatch := c.watchGone()
	timer := time.NewTimer(wait)
	cases := make([]reflect.SelectCase, 0, 2*len(consumers)+3)
	for _, cons := range consumers {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(cons.C())})
	}
	for _, cons := range consumers {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(cons.Gone())})
	}
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(gone)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.ctx.Done())})
	chosen, recv, _ := reflect.Select(cases)
	timer.Stop()
	stopWatch()
	c.lock()
	n := len(consumers)
	switch {
	case chosen < n:
		d := recv.Interface().(broker.Delivery)
		c.popped(queues[chosen], d.Message.Value)
		err := c.flushLocked()
		consumers[chosen].Done(d, err == nil)
		if err != nil {
			c.quitting = true
		}
	case chosen < 2*n:
		if errors.Is(consumers[chosen-n].Err(), broker.ErrClosed) {
			c.failErr(broker.ErrClosed)
			return
		}
		c.w.nullArray() // the queue was purged
	case chosen == 2*n: // the client hung up
		c.quitting = true
	case chosen == 2*n+1:
		c.w.nullArray()
	default:
		c.failErr(broker.ErrClosed)
	}
}
