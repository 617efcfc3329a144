package resp

import (
	"context"
	"errors"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/kv"
	"github.com/tabreduce/tabreduce/server/pubsub"
)

// errorKinds maps the domain's errors to the first word of an error reply,
// in one place; the message follows it. The order matters: the first match
// wins, so narrower errors come first.
var errorKinds = []struct {
	err  error
	kind string
}{
	{kv.ErrWrongType, "WRONGTYPE"},
	{broker.ErrInvalid, "ERR"},
	{broker.ErrQueuePaused, "ERR"},
	{kv.ErrContended, "BUSY"},
	{pubsub.ErrChannelFull, "ERR"},
	{broker.ErrClosed, "SHUTDOWN"},
	{pubsub.ErrClosed, "SHUTDOWN"},
	{context.Canceled, "SHUTDOWN"},
}

// fail writes an error reply.
func (c *conn) fail(kind, msg string) {
	c.srv.stats.errors.Add(1)
	c.w.error(kind, msg)
}

// failErr answers a command's error: the caller's mistakes with their
// message, anything else as an internal error, logged.
func (c *conn) failErr(err error) {
	for _, m := range errorKinds {
		if errors.Is(err, m.err) {
			if m.kind == "SHUTDOWN" {
				c.fail("ERR", "the server is shutting down")
				return
			}
			c.fail(m.kind, err.Error())
			return
		}
	}
	c.srv.log.Error("resp command failed", "remote", c.nc.RemoteAddr().String(), "err", err)
	c.fail("ERR", "internal error")
}
