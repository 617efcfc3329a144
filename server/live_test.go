package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server"
)

// stream is a live consumer as the tests see it: the frames (COMET lines or
// WebSocket messages) it receives, and how its stream ended.
type stream struct {
	name   string
	frames chan []byte // closed when the stream ends
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the stream ended; read after frames is closed
}

func newStream(t *testing.T, name string, cancel context.CancelFunc) *stream {
	st := &stream{name: name, frames: make(chan []byte, 1024), cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() {
		cancel()
		<-st.done
	})
	return st
}

// run feeds the frames read by next to the channel until next fails.
func (st *stream) run(ctx context.Context, next func() ([]byte, error)) {
	defer close(st.done)
	defer close(st.frames)
	for {
		b, err := next()
		if err != nil {
			st.err = err
			return
		}
		select {
		case st.frames <- b:
		case <-ctx.Done():
			st.err = ctx.Err()
			return
		}
	}
}

// next returns the next message the consumer received.
func (st *stream) next(t *testing.T) message {
	t.Helper()
	select {
	case b, ok := <-st.frames:
		if !ok {
			t.Fatalf("%s: want a message, the stream ended: %v", st.name, st.err)
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: want a JSON message, got %q: %v", st.name, b, err)
		}
		return m
	case <-time.After(waitFor):
		t.Fatalf("%s: no message after %s", st.name, waitFor)
	}
	return message{}
}

// nextN returns the next n messages.
func (st *stream) nextN(t *testing.T, n int) []message {
	t.Helper()
	out := make([]message, n)
	for i := range out {
		out[i] = st.next(t)
	}
	return out
}

// wantNothing fails the test if a message arrives within a short window.
// Only for asserting that something does not happen: no signal exists.
func (st *stream) wantNothing(t *testing.T) {
	t.Helper()
	select {
	case b, ok := <-st.frames:
		if ok {
			t.Fatalf("%s: want no message, got %s", st.name, b)
		}
	case <-time.After(150 * time.Millisecond):
	}
}

// wantEnd waits for the stream to end, skipping messages, and returns why it
// ended.
func (st *stream) wantEnd(t *testing.T) error {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case _, ok := <-st.frames:
			if !ok {
				return st.err
			}
		case <-timeout:
			t.Fatalf("%s: still open after %s", st.name, waitFor)
		}
	}
}

// openComet opens GET /c/{queue} and returns the response, whose body the
// caller reads; the consumer is subscribed when it returns. cancel ends the
// request (at the end of the test at the latest).
func (s *testServer) openComet(queue string) (resp *http.Response, ctx context.Context, cancel context.CancelFunc) {
	s.t.Helper()
	ctx, cancel = context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/c/"+queue, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err = httpClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET /c/%s: %v", queue, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		s.t.Fatalf("GET /c/%s: want status 200, got %d", queue, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		s.t.Errorf("GET /c/%s: want Content-Type text/plain, as RestMQ's, got %q", queue, ct)
	}
	return resp, ctx, cancel
}

// comet opens a COMET consumer of queue that reads each line as it arrives,
// each of which must end with "\r\n" as RestMQ's do; the consumer is
// subscribed when it returns.
func (s *testServer) comet(queue string) *stream {
	s.t.Helper()
	resp, ctx, cancel := s.openComet(queue)
	st := newStream(s.t, "comet "+queue, cancel)
	br := bufio.NewReader(resp.Body)
	go func() {
		defer resp.Body.Close()
		st.run(ctx, func() ([]byte, error) {
			line, err := br.ReadBytes('\n')
			if err == nil {
				var ok bool
				if line, ok = bytes.CutSuffix(line, []byte("\r\n")); !ok {
					return nil, fmt.Errorf("COMET line %q does not end with \\r\\n", line)
				}
			}
			return line, err
		})
	}()
	return st
}

// Hellos a WebSocket consumer may send as its first frame.
const (
	helloAck   = `{"ack":true}`
	helloNoAck = `{"ack":false}` // starts delivery without waiting for the hello timeout
	helloNone  = ""              // nothing: delivery starts after the server's wait
)

// wsConsumer is a WebSocket consumer of /ws/{queue}.
type wsConsumer struct {
	*stream
	conn *websocket.Conn
	t    *testing.T
}

// ws dials /ws/{queue} and sends hello unless it is empty. The consumer may
// not be subscribed yet when it returns: see waitConsumers.
func (s *testServer) ws(queue, hello string) *wsConsumer {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := &websocket.DialOptions{HTTPClient: httpClient}
	if s.token != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + s.token}}
	}
	dctx, dcancel := context.WithTimeout(ctx, waitFor)
	conn, _, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(s.URL(), "http")+"/ws/"+queue, opts)
	dcancel()
	if err != nil {
		cancel()
		s.t.Fatalf("dial /ws/%s: %v", queue, err)
	}
	st := newStream(s.t, "ws "+queue, cancel)
	s.t.Cleanup(func() { conn.CloseNow() })
	go st.run(ctx, func() ([]byte, error) {
		_, b, err := conn.Read(ctx)
		return b, err
	})
	c := &wsConsumer{stream: st, conn: conn, t: s.t}
	if hello != helloNone {
		c.send(hello)
	}
	return c
}

// send writes one JSON text frame.
func (c *wsConsumer) send(frame string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatalf("%s: write %s: %v", c.name, frame, err)
	}
}

// wantClosed waits for the server to close the connection with code.
func (c *wsConsumer) wantClosed(t *testing.T, code websocket.StatusCode) {
	t.Helper()
	err := c.wantEnd(t)
	if got := websocket.CloseStatus(err); got != code {
		t.Errorf("%s: want close status %d (%v), got %d (%v)", c.name, code, code, got, err)
	}
}

// waitConsumers polls until queue has n live consumers; the queue must exist.
func (s *testServer) waitConsumers(queue string, n int) {
	s.t.Helper()
	s.waitStats(queue, "has the live consumers", func(st queueStats) bool { return st.Consumers == n })
}

// liveConsumers opens a COMET and a WebSocket consumer (sending hello) of
// queue, which must exist, and waits until both are subscribed.
func (s *testServer) liveConsumers(queue, hello string) (*stream, *wsConsumer) {
	s.t.Helper()
	c, w := s.comet(queue), s.ws(queue, hello)
	s.waitConsumers(queue, 2)
	return c, w
}

// wantEnded waits for the server to end both consumers: the COMET response
// ends and the WebSocket closes with code.
func wantEnded(t *testing.T, c *stream, w *wsConsumer, code websocket.StatusCode) {
	t.Helper()
	if err := c.wantEnd(t); !errors.Is(err, io.EOF) {
		t.Errorf("%s: want the response to end (EOF), got %v", c.name, err)
	}
	w.wantClosed(t, code)
}

func TestCometDelivers(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("live", "before")
	c := s.comet("live")
	if m := c.next(t); m.Key != "live:1" || m.Value != "before" {
		t.Errorf("backlog: want {live:1 before}, got %+v", m)
	}
	s.push("live", "after")
	if m := c.next(t); m.Key != "live:2" || m.Value != "after" || m.Count != 1 {
		t.Errorf("want {live:2 after count 1}, got %+v", m)
	}
	s.waitStats("live", "settles the deliveries", func(st queueStats) bool {
		return st.Length == 0 && st.InFlight == 0 && st.Delivered == 2
	})
}

func TestWebSocketDelivers(t *testing.T) {
	for _, hello := range []string{helloNone, helloNoAck} {
		t.Run("hello "+hello, func(t *testing.T) {
			s := startServer(t, server.Config{})
			s.push("wsq", "before")
			c := s.ws("wsq", hello)
			if m := c.next(t); m.Key != "wsq:1" || m.Value != "before" {
				t.Errorf("backlog: want {wsq:1 before}, got %+v", m)
			}
			s.push("wsq", "after")
			if m := c.next(t); m.Key != "wsq:2" || m.Value != "after" {
				t.Errorf("want {wsq:2 after}, got %+v", m)
			}
			// Without ack mode a written frame is done.
			s.waitStats("wsq", "settles the deliveries", func(st queueStats) bool { return st.Length == 0 && st.InFlight == 0 })
		})
	}
}

func TestWebSocketAck(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("acks", 4)
	c := s.ws("acks", helloAck)
	got := keysOf(c.nextN(t, 4))
	wantKeys(t, "delivered", got, []string{"acks:1", "acks:2", "acks:3", "acks:4"})
	if st := s.stats("acks"); st.InFlight != 4 {
		t.Errorf("unacked: want in_flight 4, got %+v", st)
	}
	c.send(`{"ack":"acks:1"}`)
	c.send(`{"ack":["acks:2","acks:3"]}`)
	s.waitStats("acks", "has the acks", func(st queueStats) bool { return st.InFlight == 1 })

	// The consumer drops: what it had not acked returns to the queue.
	c.conn.CloseNow()
	s.waitStats("acks", "gets the unacked message back", func(st queueStats) bool {
		return st.InFlight == 0 && st.Length == 1
	})
	if m := s.take("acks"); m.Key != "acks:4" {
		t.Errorf("want acks:4 back, got %+v", m)
	}
}

func TestDroppedConsumerTakesNothing(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("drop", 3)
	first := s.ws("drop", helloAck)
	wantKeys(t, "first consumer", keysOf(first.nextN(t, 3)), []string{"drop:1", "drop:2", "drop:3"})
	first.send(`{"ack":"drop:2"}`)
	s.waitStats("drop", "has the ack", func(st queueStats) bool { return st.Acked == 1 })
	first.conn.CloseNow()

	second := s.ws("drop", helloAck)
	wantKeys(t, "second consumer", keysOf(second.nextN(t, 2)), []string{"drop:1", "drop:3"})
	second.send(`{"ack":["drop:1","drop:3"]}`)
	s.waitStats("drop", "is drained", func(st queueStats) bool {
		return st.Length == 0 && st.InFlight == 0 && st.Acked == 3
	})
}

func TestWebSocketNack(t *testing.T) {
	s := startServer(t, server.Config{MaxAttempts: 5})
	s.push("wn", "x")
	c := s.ws("wn", helloAck)
	m := c.next(t)
	c.send(`{"nack":"` + m.Key + `","error":"cannot"}`)
	again := c.next(t)
	if again.Key != m.Key || again.Count != 2 {
		t.Errorf("after a nack: want %s again with count 2, got %+v", m.Key, again)
	}
}

func TestPurgeClosesLiveConsumers(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("purged", "x")
	c, w := s.liveConsumers("purged", helloNoAck)
	s.do(http.MethodDelete, "/q/purged", nil).want(t, http.StatusOK)
	wantEnded(t, c, w, websocket.StatusNormalClosure)
	s.waitStats("purged", "is empty with no consumers", func(st queueStats) bool {
		return st.Length == 0 && st.InFlight == 0 && st.Consumers == 0
	})
}

// collect reads total messages from the consumers, in whatever order they
// arrive, and returns the keys each one got.
func collect(t *testing.T, total int, consumers ...*stream) [][]string {
	t.Helper()
	cases := make([]reflect.SelectCase, len(consumers)+1)
	for i, c := range consumers {
		cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.frames)}
	}
	cases[len(consumers)] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(time.After(waitFor))}
	out := make([][]string, len(consumers))
	for got := 0; got < total; got++ {
		i, v, ok := reflect.Select(cases)
		if i == len(consumers) {
			t.Fatalf("want %d messages, got %d after %s: %q", total, got, waitFor, out)
		}
		if !ok {
			t.Fatalf("%s: the stream ended after %d of %d messages: %v", consumers[i].name, got, total, consumers[i].err)
		}
		var m message
		if err := json.Unmarshal(v.Bytes(), &m); err != nil {
			t.Fatalf("%s: want a JSON message, got %q", consumers[i].name, v.Bytes())
		}
		out[i] = append(out[i], m.Key)
	}
	return out
}
