package resp

import (
	"context"
	"errors"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/kv"
	"github.com/tabreduce/tabreduce/server/pubsub"
)

// An error reply reads as Redis's do: its first word is the kind clients
// branch on (ERR, WRONGTYPE, BUSY), then comes the API's error code and
// the message the HTTP API would give: "-ERR invalid: invalid argument: key
// must be 1-512 bytes of UTF-8". Replies Redis clients match word for word
// (NOAUTH, WRONGPASS, NOPROTO, the protocol errors) keep Redis's text.

// errorKinds maps the domain's errors to a kind and a code, in one place.
// The first match wins, so narrower errors come first.
var errorKinds = []struct {
	err  error
	kind string
	code api.Code
}{
	{kv.ErrWrongType, "WRONGTYPE", api.CodeInvalid},
	{kv.ErrContended, "BUSY", api.CodeConflict},
	{broker.ErrInvalid, "ERR", api.CodeInvalid},
	{broker.ErrQueuePaused, "ERR", api.CodeConflict},
	{pubsub.ErrChannelFull, "ERR", api.CodeTooMany},
	{broker.ErrClosed, "ERR", api.CodeUnavailable},
	{context.Canceled, "ERR", api.CodeUnavailable},
}

// fail writes an error reply.
func (c *conn) fail(kind, msg string) {
	c.srv.stats.errors.Add(1)
	c.w.error(kind, msg)
}

// failErr answers a command's error: the caller's mistakes with their
// message, anything unknown as an internal error, logged.
func (c *conn) failErr(err error) {
	for _, m := range errorKinds {
		if errors.Is(err, m.err) {
			msg := err.Error()
			if m.code == api.CodeUnavailable {
				msg = "the server is shutting down"
			}
			c.fail(m.kind, string(m.code)+": "+msg)
			return
		}
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		c.fail("ERR", string(ae.Code)+": "+ae.Message)
		return
	}
	c.srv.log.Error("resp command failed", "remote", c.nc.RemoteAddr().String(), "err", err)
	c.fail("ERR", string(api.CodeInternal)+": internal error")
}
