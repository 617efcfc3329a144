package restmqcompat

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server"
)

// wsConn is a WebSocket client, as a browser page's.
type wsConn struct{ *websocket.Conn }

// dialWS opens path's WebSocket with the handshake's extra header (Origin,
// Cookie) and fails the test if it is refused.
func (s *srv) dialWS(t *testing.T, path string, header http.Header) *wsConn {
	t.Helper()
	c, err := s.tryWS(path, header)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return c
}

func (s *srv) tryWS(path string, header http.Header) (*wsConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL(), "http")+path, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		if resp != nil {
			return nil, &refusal{resp.StatusCode}
		}
		return nil, err
	}
	s.t.Cleanup(func() { c.CloseNow() })
	return &wsConn{c}, nil
}

type refusal struct{ status int }

func (r *refusal) Error() string { return http.StatusText(r.status) }

func (c *wsConn) send(t *testing.T, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
}

func (c *wsConn) read(t *testing.T) string {
	t.Helper()
	typ, b := c.readFrame(t)
	if typ != websocket.MessageText {
		t.Errorf("frame %q: want a text frame, got %v", b, typ)
	}
	return string(b)
}

func (c *wsConn) readFrame(t *testing.T) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, b
}

// TestWebSocketInteract follows contrib/interact.html: the page opens
// ws://…/ws/test, shows each frame it gets, and sends what is typed as
// plain text, which RestMQ echoes back. A plain-text frame must not close
// the socket, and messages keep coming after it.
func TestWebSocketInteract(t *testing.T) {
	s := start(t, server.Config{})
	ws := s.dialWS(t, "/ws/test", nil)
	ws.send(t, "hello from the browser")
	if got := ws.read(t); got != "hello from the browser" {
		t.Errorf("echo: want the typed text back, got %q", got)
	}
	ws.send(t, "more from browser")
	if got := ws.read(t); got != "more from browser" {
		t.Errorf("second echo: got %q", got)
	}
	// docs/README.websocket: curl -X POST -d "queue=test&value=foobar" …
	s.call("POST", "/", formType, "queue=test&value=foobar")
	if got := ws.read(t); got != `{"key":"test:1","value":"foobar","count":1}` {
		t.Errorf("message: got %q", got)
	}
}

// TestWebSocketCrossOrigin follows restmq_websockets: its index.html is
// served by another web server (python -m SimpleHTTPServer, port 8000) and
// opens ws://localhost:8888/ws/twitter, then eval()s each frame and its
// value. The page's origin needs --allow-origin; other origins are refused.
func TestWebSocketCrossOrigin(t *testing.T) {
	page := http.Header{"Origin": {"http://localhost:8000"}}
	closed := start(t, server.Config{})
	if _, err := closed.tryWS("/ws/twitter", page); err == nil || err.(*refusal).status != http.StatusForbidden {
		t.Errorf("another origin without --allow-origin: want 403, got %v", err)
	}
	for _, allow := range []string{"http://localhost:8000", "http://localhost:*", "localhost:8000", "*"} {
		s := start(t, server.Config{AllowOrigins: []string{allow}})
		ws := s.dialWS(t, "/ws/twitter", page)
		s.waitConsumers("twitter", 1)
		s.call("POST", "/q/twitter", formType, form("value", `{"text":"fail","id":1,"user":{"screen_name":"x"}}`))
		if got := ws.read(t); got != `{"key":"twitter:1","value":"{\"text\":\"fail\",\"id\":1,\"user\":{\"screen_name\":\"x\"}}","count":1}` {
			t.Errorf("--allow-origin %s: got %q", allow, got)
		}
		if _, err := s.tryWS("/ws/twitter", http.Header{"Origin": {"http://evil.example"}}); allow != "*" && err == nil {
			t.Errorf("--allow-origin %s: want another origin refused", allow)
		}
	}
}
