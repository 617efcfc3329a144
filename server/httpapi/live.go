package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// comet is GET /c/{queue}: a long-lived response with one JSON message per
// line as messages arrive. Each message stays leased until its line has been
// written and flushed; a client that drops returns what it had not received.
func (a *API) comet(c echo.Context) error {
	queue := c.Param("queue")
	cons, err := a.broker.Subscribe(queue, broker.SubscribeOptions{})
	if err != nil {
		return err
	}
	defer cons.Close()
	w := c.Response()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	cw := &cometWriter{rc: http.NewResponseController(w.Writer), timeout: a.cfg.WriteTimeout}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-cons.Gone():
			cw.cut()
		case <-stop:
		}
	}()
	enc := json.NewEncoder(w)
	ctx := c.Request().Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cons.Gone():
			return nil
		case d := <-cons.C():
			if !cw.begin() {
				cons.Done(d, false)
				return nil
			}
			err := enc.Encode(toMessageJSON(d.Message))
			if err == nil {
				err = cw.rc.Flush()
			}
			cw.end()
			cons.Done(d, err == nil)
			if err != nil {
				return nil
			}
		}
	}
}

// cometWriter bounds each write of a COMET stream, and lets the broker's
// dropping of the consumer (purge, shutdown) fail a write stalled on a client
// that does not read, so that shutdown need not wait out the write timeout.
type cometWriter struct {
	rc      *http.ResponseController
	timeout time.Duration

	mu      sync.Mutex
	writing bool
	gone    bool
}

// begin arms the timeout of one message's write; false means the consumer
// is gone and nothing more is to be written.
func (w *cometWriter) begin() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone {
		return false
	}
	w.writing = true
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return true
}

func (w *cometWriter) end() {
	w.mu.Lock()
	w.writing = false
	w.mu.Unlock()
}

// cut fails the write in progress, if any; between writes the stream ends
// cleanly instead.
func (w *cometWriter) cut() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gone = true
	if w.writing {
		_ = w.rc.SetWriteDeadline(time.Now())
	}
}

// wsHello is the optional first frame of a WebSocket consumer.
type wsHello struct {
	Ack      bool `json:"ack"`      // the client acks each message; until then it stays leased
	Prefetch int  `json:"prefetch"` // messages sent but not yet acked (default and maximum 64)
}

// wsClientFrame is what a consumer in ack mode sends: {"ack": key or [keys]}
// or {"nack": key, "error": "..."}.
type wsClientFrame struct {
	Ack   json.RawMessage `json:"ack"`
	Nack  string          `json:"nack"`
	Error string          `json:"error"`
}

// websocket is GET /ws/{queue}: one JSON text frame per message. A client
// that sends {"ack":true} as its first frame (within FirstFrameWait) must
// ack every message by key; unacked messages return to the queue when it
// leaves. Without it, a message is done once its frame is written.
func (a *API) websocket(c echo.Context) error {
	queue := c.Param("queue")
	if err := broker.CheckQueueName(queue); err != nil {
		return err
	}
	if err := checkUpgrade(c); err != nil {
		return err
	}
	conn, err := websocket.Accept(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // Accept has answered the request
	}
	conn.SetReadLimit(64 << 10)
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

// checkUpgrade refuses a request that is not a WebSocket handshake with a
// JSON error, before websocket.Accept would answer it in plain text.
func checkUpgrade(c echo.Context) error {
	h := c.Request().Header
	if !headerHasToken(h, "Connection", "upgrade") || !headerHasToken(h, "Upgrade", "websocket") {
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
	// The same rule websocket.Accept applies by default: a browser page of
	// another origin may not open our sockets.
	if o := h.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, c.Request().Host) {
			return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("WebSocket from origin %q refused: only pages of this server may connect", truncate(o, 80)))
		}
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
// reading frames in the background (a connection must always be read).
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
		if ok && r.err == nil {
			_ = json.Unmarshal(r.data, &hello)
		}
		if !ok || r.err != nil {
			// Put the failure back for the session to see.
			f := make(chan wsRead, 1)
			f <- r
			close(f)
			return hello, f
		}
	case <-t.C:
	case <-ctx.Done():
	}
	return hello, frames
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
			if st, reason := s.clientFrame(r); st != 0 {
				return st, reason
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
	case err != nil && err.Error() == "consumer too slow":
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
	wctx, cancel := context.WithTimeout(ctx, s.api.cfg.WriteTimeout)
	err = s.conn.Write(wctx, websocket.MessageText, b)
	cancel()
	if err != nil || !s.ack {
		s.cons.Done(d, err == nil)
		return err
	}
	s.pending[d.Message.Key()] = pendingDelivery{d: d, sent: time.Now()}
	return nil
}

// clientFrame handles an ack or nack; it returns a non-zero status to end
// the session for a frame that breaks the protocol.
func (s *wsSession) clientFrame(r wsRead) (websocket.StatusCode, string) {
	var f wsClientFrame
	if err := json.Unmarshal(r.data, &f); err != nil {
		return websocket.StatusUnsupportedData, "frames must be JSON"
	}
	var keys []string
	if len(f.Ack) > 0 {
		var one string
		if json.Unmarshal(f.Ack, &one) == nil {
			keys = []string{one}
		} else if err := json.Unmarshal(f.Ack, &keys); err != nil {
			return 0, "" // {"ack":true} repeated, or other hello fields: ignore
		}
	}
	for _, k := range keys {
		if p, ok := s.pending[k]; ok {
			delete(s.pending, k)
			s.cons.Done(p.d, true)
		}
	}
	if p, ok := s.pending[f.Nack]; ok && f.Nack != "" {
		delete(s.pending, f.Nack)
		reason := f.Error
		if reason == "" {
			reason = "nacked by consumer"
		}
		s.cons.Fail(p.d, reason)
	}
	return 0, ""
}
