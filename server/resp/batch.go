package resp

import (
	"bufio"
	"bytes"
	"errors"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/kv"
)

// A pipeline of plain SETs, of pushes to one queue, or of pops of one
// queue, is run as one store transaction: the requests of the same kind that follow the first,
// already whole in the input buffer, join it. Nothing waits for input that
// has not arrived, replies stay one per request and in order, and the
// outcome is the one the requests would have had one by one. (One write of
// the store's file instead of one per request takes a quarter to a half
// off a pipelined SET's or push's CPU; GETs gained too little to batch.)

// Bounds of one batch.
const (
	maxBatch         = 64   // requests
	maxBatchMessages = 1000 // messages of a batch of pushes
)

// batching turns batches on; benchmarks turn it off to measure the gain.
var batching = true

// batchKind says which requests run together: plain SETs, pushes to one
// queue, or pops (LPOP or RPOP without a count) of one queue (the queue is
// part of the kind).
type batchKind struct {
	push, pop bool
	queue     string
}

// batchKindOf returns the kind of a request that batches: "SET key value"
// without options with a valid key, or LPUSH or RPUSH of text or bytes
// within the broker's limits. ok is false for any other request, which
// runs alone and answers its own errors.
func (c *conn) batchKindOf(args []kv.Value) (k batchKind, ok bool) {
	if len(args) < 2 || !args[0].IsString() || !args[1].IsString() {
		return k, false
	}
	switch upper(args[0].Str()) {
	case "SET":
		return k, len(args) == 3 && kv.CheckKey(args[1].Str()) == nil
	case "LPOP", "RPOP":
		return batchKind{pop: true, queue: args[1].Str()}, len(args) == 2 && broker.CheckQueueName(args[1].Str()) == nil
	case "LPUSH", "RPUSH":
		if len(args) < 3 {
			return k, false
		}
		limit := c.srv.deps.Broker.Config().MaxMessage
		for _, a := range args[2:] {
			if !a.IsString() || len(a.Str()) > limit {
				return k, false
			}
		}
		return batchKind{push: true, queue: args[1].Str()}, broker.CheckQueueName(args[1].Str()) == nil
	}
	return k, false
}

// peeker parses requests out of what the connection has buffered, without
// reading the socket.
type peeker struct {
	src bytes.Reader
	br  *bufio.Reader
	r   reader
}

// more returns the requests of kind k that are whole in c's input buffer,
// up to maxBatch-1 of them, and consumes them; dialect reports whether one
// used the seed's types.
func (c *conn) more(k batchKind, messages int) (reqs [][]kv.Value, dialect bool) {
	if c.peek == nil {
		c.peek = &peeker{}
		c.peek.br = bufio.NewReaderSize(&c.peek.src, 16<<10)
		c.peek.r = reader{br: c.peek.br, lim: &c.srv.cfg.Limits}
	}
	p := c.peek
	for len(reqs) < maxBatch-1 && c.br.Buffered() > 0 {
		buf, _ := c.br.Peek(c.br.Buffered())
		p.src.Reset(buf)
		p.br.Reset(&p.src)
		args, d, err := p.r.readRequest(nil)
		if err != nil {
			break // incomplete or malformed: the serve loop reads it
		}
		if next, ok := c.batchKindOf(args); !ok || next != k || (k.push && messages+len(args)-2 > maxBatchMessages) {
			break
		}
		messages += len(args) - 2
		c.br.Discard(len(buf) - p.src.Len() - p.br.Buffered())
		reqs = append(reqs, args)
		dialect = dialect || d
	}
	return reqs, dialect
}

// batch runs a request of a kind that batches with those that follow it;
// it reports false, having done nothing, when it is not one or none
// follows.
func (c *conn) batch(first []kv.Value) bool {
	if !batching || c.br.Buffered() == 0 || !c.authed || len(c.subs) > 0 {
		return false
	}
	k, ok := c.batchKindOf(first)
	if !ok {
		return false
	}
	rest, dialect := c.more(k, len(first)-2)
	if len(rest) == 0 {
		return false
	}
	if dialect {
		c.w.dialect = seed
	}
	reqs := append([][]kv.Value{first}, rest...)
	c.srv.stats.commands.Add(int64(len(rest)))
	switch {
	case k.push:
		c.pushMany(k.queue, reqs)
	case k.pop:
		c.popMany(k.queue, len(reqs))
	default:
		c.setMany(reqs)
	}
	return true
}

// popMany takes up to n messages in one store operation and answers n pops
// with them, in order: the pops past the last message answer as a pop of an
// empty queue does.
func (c *conn) popMany(q string, n int) {
	b := c.srv.deps.Broker
	var msgs []broker.Message
	var err error
	for err == nil && len(msgs) < n {
		var more []broker.Message
		more, err = b.TakeN(c.ctx, q, min(n-len(msgs), b.Config().MaxLease))
		msgs = append(msgs, more...)
	}
	for i := range n {
		switch {
		case i < len(msgs):
			c.w.message(msgs[i].Value)
		case err == nil || errors.Is(err, broker.ErrQueueEmpty):
			c.w.null()
		default:
			c.failErr(err)
		}
	}
}

func (c *conn) setMany(reqs [][]kv.Value) {
	entries := make([]kv.Entry, len(reqs))
	for i, args := range reqs {
		entries[i] = kv.Entry{Key: args[1].Str(), Value: args[2]}
	}
	_, err := c.srv.deps.KV.Set(c.ctx, kv.SetParams{Entries: entries})
	for range reqs {
		c.okOrErr(err)
	}
}

// pushMany pushes every request's messages in one push and answers each
// with the queue's length after its own messages.
func (c *conn) pushMany(q string, reqs [][]kv.Value) {
	var msgs []broker.NewMessage
	for _, args := range reqs {
		for _, a := range args[2:] {
			msgs = append(msgs, broker.NewMessage{Value: []byte(a.Str())})
		}
	}
	b := c.srv.deps.Broker
	_, err := b.Push(c.ctx, q, msgs)
	var st broker.Stats
	if err == nil {
		st, err = b.Stats(c.ctx, q)
	}
	after := st.Length - int64(len(msgs)) // the length before the batch
	for _, args := range reqs {
		after += int64(len(args) - 2)
		c.intOrErr(after, err)
	}
}
