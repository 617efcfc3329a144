package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// wsConsumerReadLimit bounds one frame a WebSocket consumer sends.
const wsConsumerReadLimit = 64 << 10

// wsHello is the optional first frame of a WebSocket consumer.
type wsHello struct {
	Ack      bool `json:"ack"`      // the client acks each message; until then it stays leased
	Prefetch int  `json:"prefetch"` // messages sent but not yet acked (default and maximum 64)
}

// wsClientFrame is what a consumer in ack mode sends: {"ack": key or [keys]}
// or {"nack": key, "error": "..."}.
type wsClientFrame struct {
	Ack   json.RawMessage `json:"ack"`
	Nack  *string         `json:"nack"`
	Error string          `json:"error"`
}

// websocket is GET /ws/{queue}: one JSON text frame {"key","value","count"}
// per message, as RestMQ sends them (count is ours). A client that sends {"ack":true} as its
// first frame (within FirstFrameWait) must ack every message by key;
// unacked messages return to the queue when it leaves. Without it, a
// message is done once its frame is written. Any other frame, plain text
// from RestMQ's consumer pages included, is echoed back as RestMQ does.
func (a *API) websocket(c echo.Context) error {
	queue := c.Param("queue")
	if err := broker.CheckQueueName(queue); err != nil {
		return err
	}
	conn, err := a.acceptWebSocket(c)
	if conn == nil {
		return err
	}
	conn.SetReadLimit(wsConsumerReadLimit)
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()

	hello, frames := a.wsFirstFrame(ctx, conn)
	cons, err := a.broker.Subscribe(queue, broker.SubscribeOptions{Prefetch: hello.Prefetch})
	if err != nil {
		conn.Close(websocket.StatusTryAgainLater, "broker closing")
		return nil
	}
	defer cons.Close()
	s := &wsSession{api: a, conn: conn, cons: cons, ack: hello.Ack, pending: map[string]pendingDelivery{}}
	status, reason := s.run(ctx, frames)
	conn.Close(status, reason)
	return nil
}

// checkUpgrade refuses a request that is not a WebSocket handshake, or that
// comes from a page of an origin we do not allow, with a JSON error, before
// websocket.Accept would answer it in plain text.
func (a *API) checkUpgrade(c echo.Context) error {
	h := c.Request().Header
	if !isWebSocketHandshake(c.Request()) {
		c.Response().Header().Set("Connection", "Upgrade")
		c.Response().Header().Set("Upgrade", "websocket")
		return echo.NewHTTPError(http.StatusUpgradeRequired, "this route needs a WebSocket handshake (Connection: Upgrade, Upgrade: websocket)")
	}
	if h.Get("Sec-WebSocket-Version") != "13" {
		c.Response().Header().Set("Sec-WebSocket-Version", "13")
		return badRequest("unsupported WebSocket version %q: want 13", truncate(h.Get("Sec-WebSocket-Version"), 16))
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h.Get("Sec-WebSocket-Key"))); err != nil || len(k) != 16 || len(h.Values("Sec-WebSocket-Key")) != 1 {
		return badRequest("the WebSocket handshake needs one Sec-WebSocket-Key of 16 base64 bytes")
	}
	if !a.pageAllowed(c.Request()) {
		return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("WebSocket from origin %q refused: only pages of this server, or of an origin --allow-origin lists, may connect", truncate(h.Get("Origin"), 80)))
	}
	return nil
}

// headerHasToken reports whether a comma-separated header holds token, in
// any case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsFirstFrame waits briefly for the client's optional hello, then keeps
// reading frames in the background (a connection must always be read). A
// first frame that is not a hello is handed on to the session like any
// other.
func (a *API) wsFirstFrame(ctx context.Context, conn *websocket.Conn) (wsHello, <-chan wsRead) {
	frames := make(chan wsRead, 16)
	go func() {
		defer close(frames)
		for {
			typ, b, err := conn.Read(ctx)
			select {
			case frames <- wsRead{typ, b, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var hello wsHello
	t := time.NewTimer(a.cfg.FirstFrameWait)
	defer t.Stop()
	select {
	case r, ok := <-frames:
		if !ok || (r.err == nil && parseHello(r.data, &hello)) {
			return hello, frames
		}
		return hello, prependFrame(ctx, r, frames) // for the session to see
	case <-t.C:
	case <-ctx.Done():
	}
	return hello, frames
}

// parseHello reports whether b is a hello: a JSON object with "ack" true or
// false, or "prefetch".
func parseHello(b []byte, h *wsHello) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return false
	}
	_, hasPrefetch := fields["prefetch"]
	ack, hasAck := fields["ack"]
	if hasAck && string(ack) != "true" && string(ack) != "false" {
		return false // an ack of keys, sent early
	}
	return (hasAck || hasPrefetch) && json.Unmarshal(b, h) == nil
}

// prependFrame returns a channel of r followed by rest's frames; it ends
// with rest, at the first error, or with ctx.
func prependFrame(ctx context.Context, r wsRead, rest <-chan wsRead) <-chan wsRead {
	out := make(chan wsRead)
	go func() {
		defer close(out)
		for {
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
			if r.err != nil {
				return
			}
			var ok bool
			if r, ok = <-rest; !ok {
				return
			}
		}
	}()
	return out
}

type wsRead struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

type pendingDelivery struct {
	d    broker.Delivery
	sent time.Time
}

// wsSession is one WebSocket consumer's loop.
type wsSession struct {
	api     *API
	conn    *websocket.Conn
	cons    *broker.Consumer
	ack     bool
	pending map[string]pendingDelivery // by key, in ack mode
}

// run delivers until the client or the broker ends the session, and returns
// the close status and reason. Deliveries still pending return to the queue
// when the consumer closes.
func (s *wsSession) run(ctx context.Context, frames <-chan wsRead) (websocket.StatusCode, string) {
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return websocket.StatusGoingAway, "server shutting down"
		case <-s.cons.Gone():
			return goneStatus(s.cons.Err())
		case r, ok := <-frames:
			if !ok || r.err != nil {
				return websocket.StatusNormalClosure, ""
			}
			if err := s.clientFrame(ctx, r); err != nil {
				return websocket.StatusInternalError, "write failed"
			}
		case d := <-s.cons.C():
			if err := s.send(ctx, d); err != nil {
				return websocket.StatusInternalError, "write failed"
			}
		case <-check.C:
			for _, p := range s.pending {
				if time.Since(p.sent) > s.api.broker.Config().LiveVisibility {
					return websocket.StatusPolicyViolation, "ack timeout"
				}
			}
		}
	}
}

func goneStatus(err error) (websocket.StatusCode, string) {
	switch {
	case errors.Is(err, broker.ErrClosed):
		return websocket.StatusGoingAway, "server shutting down"
	case errors.Is(err, broker.ErrConsumerSlow):
		return websocket.StatusPolicyViolation, err.Error()
	case err != nil:
		return websocket.StatusNormalClosure, err.Error()
	}
	return websocket.StatusNormalClosure, ""
}

func (s *wsSession) send(ctx context.Context, d broker.Delivery) error {
	b, err := json.Marshal(toMessageJSON(d.Message))
	if err != nil {
		s.cons.Done(d, false)
		return err
	}
	err = s.write(ctx, websocket.MessageText, b)
	if err != nil || !s.ack {
		s.cons.Done(d, err == nil)
		return err
	}
	s.pending[d.Message.Key()] = pendingDelivery{d: d, sent: time.Now()}
	return nil
}

func (s *wsSession) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, s.api.cfg.WriteTimeout)
	defer cancel()
	return s.conn.Write(wctx, typ, b)
}

// clientFrame handles what the client sends: an ack or a nack of messages it
// was sent, a repeated hello (ignored), or anything else, which is echoed
// back as RestMQ's consumer does. An error means the echo failed.
func (s *wsSession) clientFrame(ctx context.Context, r wsRead) error {
	var f wsClientFrame
	if r.typ != websocket.MessageText || json.Unmarshal(r.data, &f) != nil || (len(f.Ack) == 0 && f.Nack == nil) {
		var h wsHello
		if parseHello(r.data, &h) {
			return nil
		}
		return s.write(ctx, r.typ, r.data)
	}
	var keys []string
	var one string
	if json.Unmarshal(f.Ack, &one) == nil {
		keys = []string{one}
	} else if json.Unmarshal(f.Ack, &keys) != nil {
		keys = nil // {"ack":true} with a nack, or other hello fields: no keys
	}
	for _, k := range keys {
		if p, ok := s.pending[k]; ok {
			delete(s.pending, k)
			s.cons.Done(p.d, true)
		}
	}
	if f.Nack == nil {
		return nil
	}
	if p, ok := s.pending[*f.Nack]; ok {
		delete(s.pending, *f.Nack)
		reason := f.Error
		if reason == "" {
			reason = "nacked by consumer"
		}
		s.cons.Fail(p.d, reason)
	}
	return nil
}

// smallBuffers hands the WebSocket library, when it hijacks the connection,
// read and write buffers of its own size instead of net/http's 4 KiB each.
// A socket keeps its buffers as long as it is open; for the many idle worker
// sockets a server holds, they were the largest part of what each cost. A
// frame larger than a buffer is read or written past it, straight to the
// connection.
type smallBuffers struct {
	http.ResponseWriter
	size int
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes the connection over and gives it fresh buffers, keeping
// whatever the client sent past its handshake that net/http had read.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, w.size)
	if n := brw.Reader.Buffered(); n > 0 {
		// The early bytes go into the new buffer itself: the library
		// keeps what is buffered and resets what is underneath.
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(w.size, n))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, w.size)), nil
}
