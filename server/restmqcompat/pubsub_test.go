package restmqcompat

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server"
)

// TestPubSubDrag follows pubsub_ws's pubsub_standalone.js and its drag demo
// (test/drag/default.html): each page sends JSON.stringify(ui.position) as
// a text frame and sets its box from every frame it gets, which must be the
// other page's frames, raw, and never its own.
func TestPubSubDrag(t *testing.T) {
	s := start(t, server.Config{})
	a := s.dialWS(t, "/ws/pubsub/websession", nil)
	b := s.dialWS(t, "/ws/pubsub/websession", nil)
	eventually(t, "both pages subscribed", func() bool {
		return strings.Count(s.call("GET", "/presence/websession", "", "").body, `"id"`) == 2
	})
	a.send(t, `{"top":10,"left":20}`)
	a.send(t, `{"top":11,"left":22}`)
	b.send(t, `{"top":5,"left":5}`)
	for _, want := range []string{`{"top":10,"left":20}`, `{"top":11,"left":22}`} {
		if got := b.read(t); got != want {
			t.Errorf("the other page: want %s, got %q", want, got)
		}
	}
	if got := a.read(t); got != `{"top":5,"left":5}` {
		t.Errorf("the first page: want only the other's frame, got %q", got)
	}
	// pubsub_standalone.js's /publish: a form with field body, to everyone.
	r := s.call("POST", "/pub/websession", formType, "body=%7B%22top%22%3A1%7D")
	if r.status != 200 || r.body != `{"channel":"websession","delivered":2}`+"\n" {
		t.Errorf("POST /pub body=: got %d %q", r.status, r.body)
	}
	for name, c := range map[string]*wsConn{"a": a, "b": b} {
		if got := c.read(t); got != `{"top":1}` {
			t.Errorf("%s after POST: want the body's value, got %q", name, got)
		}
	}
	// A binary frame stays binary.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if typ, got := b.readFrame(t); typ != websocket.MessageBinary || string(got) != "\x00\x01\x02" {
		t.Errorf("binary frame: got %v %q", typ, got)
	}
}

// TestPubSubEnvelopes: ?events=json gives our JSON envelopes with presence,
// the sender's own messages included.
func TestPubSubEnvelopes(t *testing.T) {
	s := start(t, server.Config{})
	a := s.dialWS(t, "/ws/pubsub/room?events=json", nil)
	if got := a.read(t); !strings.HasPrefix(got, `{"type":"join","channel":"room","member":{"id":"`) {
		t.Fatalf("first envelope: want own join, got %q", got)
	}
	a.send(t, "hi")
	if got := a.read(t); !strings.HasPrefix(got, `{"type":"message","channel":"room","from":"`) || !strings.HasSuffix(got, `","data":"hi"}`) {
		t.Errorf("own message: got %q", got)
	}
	if r := s.call("GET", "/ws/pubsub/room?events=xml", "", "", "Connection", "Upgrade", "Upgrade", "websocket"); r.status != http.StatusBadRequest {
		t.Errorf("?events=xml: want 400, got %d", r.status)
	}
}

// TestPubSubComet follows nodester_pubsub's README: curl $S/lmao streams,
// curl -d 'body=sup' $S/lmao publishes, and the stream shows "sup\n"; and
// pubsub_comet's comet_test.js, whose /publish takes body= too. Here the
// channel's path is /pub/{channel} for both.
func TestPubSubComet(t *testing.T) {
	s := start(t, server.Config{})
	c, h := s.dialRaw("GET /pub/lmao HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\nConnection: close")
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("want text/plain, got %q", ct)
	}
	eventually(t, "the stream subscribed", func() bool {
		return strings.Contains(s.call("GET", "/presence/lmao", "", "").body, `"id"`)
	})
	s.call("POST", "/pub/lmao", formType, "body=sup")
	s.call("POST", "/pub/lmao", formType, "body=test")
	s.call("POST", "/pub/lmao", "text/plain", "raw text")
	for _, want := range []string{"sup\n", "test\n", "raw text\n"} {
		if got := c.chunk(t); got != want {
			t.Errorf("stream: want %q, got %q", want, got)
		}
	}
	// The same channel as Server-Sent Events.
	sse, _ := s.dialRaw("GET /pub/lmao HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nConnection: close")
	eventually(t, "two subscribers", func() bool {
		return strings.Count(s.call("GET", "/presence/lmao", "", "").body, `"id"`) == 2
	})
	s.call("POST", "/pub/lmao", formType, "body=two%0Alines")
	if got := sse.chunk(t); got != "data: two\ndata: lines\n\n" {
		t.Errorf("SSE: got %q", got)
	}
}
