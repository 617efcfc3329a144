package resp

import (
	"bufio"
	"bytes"

	"github.com/tabreduce/tabreduce/server/kv"
)

// A pipeline of plain SETs is run as one store transaction: the SETs that
// follow the first, already whole in the input buffer, join it. Nothing
// waits for input that has not arrived, replies stay one per request and
// in order, and the outcome is the one the requests would have had one by
// one. (One write of the store's file instead of one per SET saves about a
// quarter of the CPU of a pipelined SET; GETs gained too little to batch.)

// maxBatch bounds the requests one transaction carries.
const maxBatch = 64

// batching turns batches on; benchmarks turn it off to measure the gain.
var batching = true

// batchable reports whether args is a request that batches: "SET key
// value" without options, with a key that is a valid name.
func batchable(args []kv.Value) bool {
	return len(args) == 3 && args[0].IsString() && args[1].IsString() &&
		upper(args[0].Str()) == "SET" && kv.CheckKey(args[1].Str()) == nil
}

// peeker parses requests out of what the connection has buffered, without
// reading the socket.
type peeker struct {
	src bytes.Reader
	br  *bufio.Reader
	r   reader
}

// more returns the batchable requests that are whole in c's input buffer,
// up to max, and consumes them; dialect reports whether one used the
// seed's types.
func (c *conn) more(max int) (reqs [][]kv.Value, dialect bool) {
	if c.peek == nil {
		c.peek = &peeker{}
		c.peek.br = bufio.NewReaderSize(&c.peek.src, 16<<10)
		c.peek.r = reader{br: c.peek.br, lim: &c.srv.cfg.Limits}
	}
	p := c.peek
	for len(reqs) < max && c.br.Buffered() > 0 {
		buf, _ := c.br.Peek(c.br.Buffered())
		p.src.Reset(buf)
		p.br.Reset(&p.src)
		args, d, err := p.r.readRequest(nil)
		if err != nil {
			break // incomplete or malformed: the serve loop reads it
		}
		if !batchable(args) {
			break
		}
		c.br.Discard(len(buf) - p.src.Len() - p.br.Buffered())
		reqs = append(reqs, args)
		dialect = dialect || d
	}
	return reqs, dialect
}

// batch runs a batchable request with those that follow it; it reports
// false, having done nothing, when none follows.
func (c *conn) batch(first []kv.Value) bool {
	if !batching || c.br.Buffered() == 0 {
		return false
	}
	rest, dialect := c.more(maxBatch - 1)
	if len(rest) == 0 {
		return false
	}
	if dialect {
		c.w.dialect = seed
	}
	reqs := append([][]kv.Value{first}, rest...)
	c.srv.stats.commands.Add(int64(len(rest)))
	c.setMany(reqs)
	return true
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
