// Pub/sub with presence over HTTP and WebSockets.
//
//	GET  /ws/pubsub/{channel}  WebSocket: subscribe, and publish by sending frames
//	POST /pub/{channel}        publish the request body → {"channel":"c","delivered":N}
//	GET  /presence/{channel}   → {"channel":"c","members":[member, ...]}
//
// Channel names follow the queue-name rule (broker.CheckQueueName); a bad
// name is answered 400 before any upgrade.
//
// Every frame the server sends a subscriber is one JSON text frame, an
// envelope of one of three types:
//
//	{"type":"join","channel":"c","member":{"id":"9f2c…","remote_addr":"10.0.0.7:51234","user_agent":"…","joined":"2025-01-02T15:04:05.123Z"}}
//	{"type":"leave","channel":"c","member":{…}}
//	{"type":"message","channel":"c","from":"9f2c…","data":"hello"}
//	{"type":"message","channel":"c","from":"http","data_b64":"AAEC"}
//
//   - A message carries "data", a JSON string, when its payload is text: a
//     text frame, or a POST body that is valid UTF-8 and not sent as
//     Content-Type application/octet-stream. Anything else, binary frames
//     included, carries "data_b64", the payload in standard base64.
//   - "from" is the sending connection's id, or "http" for POST /pub.
//   - Messages go to every subscriber of the channel, the sender included,
//     in publish order: a sender sees its own message come back.
//   - The first frame a subscriber receives is its own join, which tells it
//     its id. Joins and leaves go to every member; a subscriber dropped for
//     being slow leaves like any other. On shutdown no leaves are sent.
//
// Limits (pubsub.Config): a frame longer than MaxMessage closes its sender
// with StatusMessageTooBig; POST bodies longer than it are answered 413. A
// subscriber whose outgoing buffer (Buffer events) fills up is closed with
// StatusPolicyViolation, so it never holds back the publisher or the other
// subscribers; every write is bounded by WriteTimeout. A full channel
// (MaxSubscribers) closes the new connection with StatusTryAgainLater, and
// Hub.Close closes every connection with StatusGoingAway.
//
// The WebSocket handshake rejects cross-origin browser requests
// (coder/websocket's default origin check).

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/pubsub"
)

// publishResponse answers POST /pub/{channel}. Delivered is how many
// subscribers took the message into their outgoing buffers.
type publishResponse struct {
	Channel   string `json:"channel"`
	Delivered int    `json:"delivered"`
}

// presenceResponse answers GET /presence/{channel}.
type presenceResponse struct {
	Channel string          `json:"channel"`
	Members []pubsub.Member `json:"members"`
}

// pubsubSubscribe serves GET /ws/pubsub/:channel: it upgrades to a WebSocket
// that receives the channel's events and publishes every frame it sends. It
// returns when the connection ends, the subscriber is dropped or the Hub
// closes.
func pubsubSubscribe(h *pubsub.Hub, log *slog.Logger) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := channelParam(c)
		if err != nil {
			return err
		}
		if err := checkUpgrade(c); err != nil {
			return err
		}
		r := c.Request()
		conn, err := websocket.Accept(c.Response(), r, nil)
		if err != nil {
			// Accept has answered the request itself.
			log.Debug("pubsub upgrade failed", "channel", name, "remote_addr", r.RemoteAddr, "err", err)
			return nil
		}
		defer conn.CloseNow()

		sub, err := h.Subscribe(name, pubsub.Member{RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent()})
		if err != nil {
			code, reason := websocket.StatusTryAgainLater, "channel is full"
			if errors.Is(err, pubsub.ErrClosed) {
				code, reason = websocket.StatusGoingAway, "server shutting down"
			}
			log.Info("pubsub subscribe refused", "channel", name, "remote_addr", r.RemoteAddr, "err", err)
			conn.Close(code, reason)
			return nil
		}
		defer sub.Close()

		sc := &subscriberConn{
			conn: conn,
			sub:  sub,
			cfg:  h.Config(),
			log:  log.With("channel", name, "conn", sub.ID(), "remote_addr", r.RemoteAddr),
		}
		sc.log.Info("pubsub subscriber joined")
		sc.serve(r.Context())
		sc.log.Info("pubsub subscriber left")
		return nil
	}
}

// pubsubPublish serves POST /pub/:channel: the body goes to every subscriber
// of the channel as one message from "http".
func pubsubPublish(h *pubsub.Hub) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := channelParam(c)
		if err != nil {
			return err
		}
		maxLen := h.Config().MaxMessage
		body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxLen+1))
		if err != nil {
			var he *echo.HTTPError
			if errors.As(err, &he) { // BodyLimit's 413
				return err
			}
			return badRequest("reading body: %v", err)
		}
		if int64(len(body)) > maxLen {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("message exceeds %d bytes", maxLen))
		}
		binary := c.Request().Header.Get(echo.HeaderContentType) == echo.MIMEOctetStream
		n, err := h.Publish(name, pubsub.FromHTTP, body, binary)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, publishResponse{Channel: name, Delivered: n})
	}
}

// pubsubPresence serves GET /presence/:channel: the channel's members in the
// order they joined; an unknown channel has none.
func pubsubPresence(h *pubsub.Hub) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := channelParam(c)
		if err != nil {
			return err
		}
		members, err := h.Members(name)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, presenceResponse{Channel: name, Members: members})
	}
}

// channelParam returns the :channel path parameter, or a 400 error if it is
// not a valid channel name.
func channelParam(c echo.Context) (string, error) {
	name := c.Param("channel")
	return name, broker.CheckQueueName(name)
}

// subscriberConn carries one Subscriber over one WebSocket, in the manner of
// coder/websocket's chat example: it always reads, writes from a bounded
// buffer with a timeout per write, and is closed when it falls behind.
type subscriberConn struct {
	conn *websocket.Conn
	sub  *pubsub.Subscriber
	cfg  pubsub.Config
	log  *slog.Logger
}

// serve runs the connection until the peer goes, ctx ends, a write fails or
// the Hub drops the subscriber, and returns once its goroutines have ended.
func (sc *subscriberConn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		sc.readLoop(ctx)
	})
	// A dropped subscriber's writer may be stuck in a write to a peer that
	// does not read, so the close is sent from here rather than from writeLoop.
	wg.Go(func() {
		select {
		case <-sc.sub.Done():
			sc.closeDropped()
		case <-ctx.Done():
		}
	})
	sc.writeLoop(ctx)
	cancel()
	sc.conn.CloseNow()
	wg.Wait()
}

// readLoop publishes every message the peer sends until the connection ends.
// A message longer than MaxMessage closes the connection with
// StatusMessageTooBig.
func (sc *subscriberConn) readLoop(ctx context.Context) {
	maxLen := sc.cfg.MaxMessage
	// We enforce maxLen ourselves, to close with a reason that names it; the
	// library's limit, one byte further, is never reached.
	sc.conn.SetReadLimit(maxLen + 1)
	for {
		typ, r, err := sc.conn.Reader(ctx)
		if err != nil {
			sc.log.Debug("pubsub read ended", "err", err)
			return
		}
		data, err := io.ReadAll(io.LimitReader(r, maxLen+1))
		if err != nil {
			sc.log.Debug("pubsub read ended", "err", err)
			return
		}
		if int64(len(data)) > maxLen {
			sc.log.Info("pubsub message too big", "limit", maxLen)
			sc.conn.Close(websocket.StatusMessageTooBig, fmt.Sprintf("message exceeds %d bytes", maxLen))
			return
		}
		if _, err := sc.sub.Publish(data, typ == websocket.MessageBinary); err != nil {
			sc.log.Debug("pubsub publish failed", "err", err)
			return
		}
	}
}

// writeLoop writes the subscriber's events until ctx ends or a write fails.
func (sc *subscriberConn) writeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-sc.sub.Events():
			wctx, cancel := context.WithTimeout(ctx, sc.cfg.WriteTimeout)
			err := sc.conn.Write(wctx, websocket.MessageText, ev.Frame())
			cancel()
			if err != nil {
				sc.log.Debug("pubsub write failed", "err", err)
				return
			}
		}
	}
}

// closeDropped closes the connection of a subscriber the Hub dropped, with
// a status and reason that say why.
func (sc *subscriberConn) closeDropped() {
	err := sc.sub.Err()
	code, reason := websocket.StatusPolicyViolation, "too slow: outgoing buffer full"
	if errors.Is(err, pubsub.ErrClosed) {
		code, reason = websocket.StatusGoingAway, "server shutting down"
	}
	sc.log.Info("pubsub subscriber dropped", "err", err)
	sc.conn.Close(code, reason)
}
