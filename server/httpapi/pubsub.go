// Pub/sub with presence over HTTP and WebSockets, in the manner of
// gleicon's PubSub servers (pubsub_ws, nodester_pubsub, pubsub_comet).
//
//	GET  /ws/pubsub/{channel}  WebSocket: subscribe, and publish by sending frames
//	GET  /pub/{channel}        COMET: one message per line as they come (or Server-Sent Events)
//	POST /pub/{channel}        publish form field body= (or the raw body) → {"channel":"c","delivered":N}
//	GET  /presence/{channel}   → {"channel":"c","members":[member, ...]}
//
// Channel names follow the queue-name rule (broker.CheckQueueName); a bad
// name is answered 400 before any upgrade.
//
// By default subscribers get raw messages, as those servers relay them: a
// WebSocket subscriber gets each message as one frame (text, or binary for a
// binary frame or an application/octet-stream POST) and does not get its
// own frames back; a COMET subscriber gets each payload followed by "\n"; an
// SSE subscriber gets each payload as an event's data (a payload that is not
// UTF-8 as an event of type "binary" whose data is its base64).
//
// With ?events=json a subscriber gets our envelopes instead, one JSON text
// frame (or line, or event) each, presence included:
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
//   - Messages go to every such subscriber of the channel, the sender
//     included, in publish order: a sender sees its own message come back.
//   - The first envelope a subscriber receives is its own join, which tells
//     it its id. Joins and leaves go to every member; a subscriber dropped
//     for being slow leaves like any other. On shutdown no leaves are sent.
//
// Limits (pubsub.Config): a frame longer than MaxMessage closes its sender
// with StatusMessageTooBig; POST bodies longer than it are answered 413. A
// subscriber whose outgoing buffer (Buffer events) fills up is closed with
// StatusPolicyViolation (a COMET or SSE stream ends), so it never holds back
// the publisher or the other subscribers; every write is bounded by
// WriteTimeout. A full channel (MaxSubscribers) closes the new connection
// with StatusTryAgainLater (503 for a stream), and Hub.Close closes every
// connection with StatusGoingAway.
//
// Browser pages of other origins may subscribe only when AllowOrigins lists
// them. A socket publishes only with write rights (the token, when one is
// set); one that PublicRead let in may subscribe, and is closed with
// StatusPolicyViolation if it sends a frame.

package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"unicode/utf8"

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

// subscriberMode is how a subscriber gets a channel's events.
type subscriberMode struct {
	json bool   // our envelopes, presence included (?events=json)
	self string // raw mode: the subscriber's own id, whose messages it does not get back
}

// subscription returns a subscribing request's channel and mode.
func subscription(c echo.Context) (string, subscriberMode, error) {
	name, err := channelParam(c)
	if err != nil {
		return "", subscriberMode{}, err
	}
	switch v := c.QueryParam("events"); v {
	case "", "raw":
		return name, subscriberMode{}, nil
	case "json":
		return name, subscriberMode{json: true}, nil
	default:
		return "", subscriberMode{}, badRequest("events must be raw or json, got %q", truncate(v, 16))
	}
}

// wants reports whether the subscriber gets ev.
func (m subscriberMode) wants(ev *pubsub.Event) bool {
	return m.json || (ev.Type == pubsub.EventMessage && ev.From != m.self)
}

// pubsubSubscribe serves GET /ws/pubsub/:channel: it upgrades to a WebSocket
// that receives the channel's events and publishes every frame it sends. It
// returns when the connection ends, the subscriber is dropped or the Hub
// closes.
func (a *API) pubsubSubscribe(c echo.Context) error {
	name, mode, err := subscription(c)
	if err != nil {
		return err
	}
	r := c.Request()
	conn, err := a.acceptWebSocket(c)
	if conn == nil {
		return err
	}
	defer conn.CloseNow()

	sub, err := a.hub.Subscribe(name, pubsub.Member{RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		code, reason := websocket.StatusTryAgainLater, "channel is full"
		if errors.Is(err, pubsub.ErrClosed) {
			code, reason = websocket.StatusGoingAway, "server shutting down"
		}
		a.log.Info("pubsub subscribe refused", "channel", name, "remote_addr", r.RemoteAddr, "err", err)
		conn.Close(code, reason)
		return nil
	}
	defer sub.Close()
	mode.self = sub.ID()

	sc := &subscriberConn{
		conn:    conn,
		sub:     sub,
		mode:    mode,
		publish: a.canWrite(r),
		cfg:     a.hub.Config(),
		log:     a.log.With("channel", name, "conn", sub.ID(), "remote_addr", r.RemoteAddr),
	}
	sc.log.Info("pubsub subscriber joined")
	sc.serve(r.Context())
	sc.log.Info("pubsub subscriber left")
	return nil
}

// pubsubStream serves GET /pub/:channel: a long-lived response with the
// channel's messages as nodester_pubsub writes them (each payload and
// "\n"), or Server-Sent Events when the client asks for text/event-stream.
func (a *API) pubsubStream(c echo.Context) error {
	name, mode, err := subscription(c)
	if err != nil {
		return err
	}
	if err := a.checkStreamOrigin(c); err != nil {
		return err
	}
	r := c.Request()
	sub, err := a.hub.Subscribe(name, pubsub.Member{RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		if errors.Is(err, pubsub.ErrClosed) {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "server shutting down")
		}
		return echo.NewHTTPError(http.StatusServiceUnavailable, "channel is full")
	}
	defer sub.Close()
	mode.self = sub.ID()
	sse := wantsEventStream(r)
	cw, stop := a.startStream(c, sse, a.hub.Config().WriteTimeout, sub.Done())
	defer stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-sub.Done():
			return nil
		case ev := <-sub.Events():
			if !mode.wants(ev) {
				continue
			}
			if err := cw.write(streamEvent(ev, mode, sse)); err != nil {
				return nil
			}
		}
	}
}

// streamEvent is how a COMET or SSE subscriber gets one event.
func streamEvent(ev *pubsub.Event, mode subscriberMode, sse bool) []byte {
	switch {
	case mode.json && sse:
		return sseEvent("", "", ev.Frame())
	case mode.json:
		return append(slices.Clip(ev.Frame()), '\n')
	case sse && isBinary(ev):
		return sseEvent("binary", "", []byte(base64.StdEncoding.EncodeToString(ev.Data)))
	case sse:
		return sseEvent("", "", ev.Data)
	}
	return append(slices.Clip(ev.Data), '\n')
}

// isBinary reports whether a message's payload is not text.
func isBinary(ev *pubsub.Event) bool { return ev.Binary || !utf8.Valid(ev.Data) }

// pubsubPublish serves POST /pub/:channel: form field body (as
// nodester_pubsub and pubsub_comet take it), or else the raw body, goes to
// every subscriber of the channel as one message from "http".
func (a *API) pubsubPublish(c echo.Context) error {
	name, err := channelParam(c)
	if err != nil {
		return err
	}
	m, _, err := readMessage(c, []string{"body"})
	if err != nil {
		return err
	}
	if maxLen := a.hub.Config().MaxMessage; int64(len(m.Value)) > maxLen {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("message exceeds %d bytes", maxLen))
	}
	binary := mediaType(c.Request()) == echo.MIMEOctetStream
	n, err := a.hub.Publish(name, pubsub.FromHTTP, m.Value, binary)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, publishResponse{Channel: name, Delivered: n})
}

// pubsubPresence serves GET /presence/:channel: the channel's members in the
// order they joined; an unknown channel has none.
func (a *API) pubsubPresence(c echo.Context) error {
	name, err := channelParam(c)
	if err != nil {
		return err
	}
	members, err := a.hub.Members(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, presenceResponse{Channel: name, Members: members})
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
	mode subscriberMode
	// publish: the socket has write rights (canWrite), so its frames are
	// published. A socket that PublicRead alone let in
	// subscribes, and is closed if it sends a message.
	publish bool
	cfg     pubsub.Config
	log     *slog.Logger
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
		if !sc.publish {
			sc.log.Info("pubsub publish refused: read-only socket")
			sc.conn.Close(websocket.StatusPolicyViolation, "this socket may subscribe but not publish: publishing needs the token")
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
			if !sc.mode.wants(ev) {
				continue
			}
			typ, frame := websocket.MessageText, ev.Frame()
			if !sc.mode.json {
				frame = ev.Data
				if isBinary(ev) {
					typ = websocket.MessageBinary
				}
			}
			wctx, cancel := context.WithTimeout(ctx, sc.cfg.WriteTimeout)
			err := sc.conn.Write(wctx, typ, frame)
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
