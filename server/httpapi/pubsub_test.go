package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/pubsub"
)

// psWait bounds every wait for a signal, so a bug fails the test instead of
// hanging it.
const psWait = 5 * time.Second

// pubsubServer serves the three pub/sub routes on a real loopback listener.
type pubsubServer struct {
	hub *pubsub.Hub
	url string
}

// newPubsubServer starts a Hub with cfg behind a test server; both close at
// the end of the test.
func newPubsubServer(t *testing.T, cfg pubsub.Config) *pubsubServer {
	t.Helper()
	h := pubsub.New(cfg)
	e := echo.New()
	e.HTTPErrorHandler = handleError
	e.Use(unescapeParams)
	a := &API{hub: h, log: slog.New(slog.DiscardHandler)}
	e.GET("/ws/pubsub/:channel", a.pubsubSubscribe)
	e.GET("/pub/:channel", a.pubsubStream)
	e.POST("/pub/:channel", a.pubsubPublish)
	e.GET("/presence/:channel", a.pubsubPresence)
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		h.Close() // ends every subscriber's handler
		srv.Close()
	})
	return &pubsubServer{hub: h, url: srv.URL}
}

// dial subscribes to channel as a WebSocket client with the given user
// agent, asking for our JSON envelopes.
func (s *pubsubServer) dial(t *testing.T, channel, agent string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), psWait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/ws/pubsub/"+channel+"?events=json",
		&websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {agent}}})
	if err != nil {
		t.Fatalf("dial %s: %v", channel, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// join dials channel and returns the connection with the id its own join
// event announced.
func (s *pubsubServer) join(t *testing.T, channel, agent string) (*websocket.Conn, string) {
	t.Helper()
	c := s.dial(t, channel, agent)
	ev := psReadEvent(t, c)
	if ev.Type != pubsub.EventJoin || ev.Member == nil || ev.Member.UserAgent != agent {
		t.Fatalf("first frame %+v, want own join", ev)
	}
	return c, ev.Member.ID
}

// post publishes body to channel and returns the status and response body.
func (s *pubsubServer) post(t *testing.T, channel, body string) (int, string) {
	t.Helper()
	return s.do(t, http.MethodPost, "/pub/"+channel, body)
}

// do sends one request and returns the status and response body.
func (s *pubsubServer) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: psWait}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// presence returns the channel's members by GET /presence.
func (s *pubsubServer) presence(t *testing.T, channel string) []pubsub.Member {
	t.Helper()
	status, body := s.do(t, http.MethodGet, "/presence/"+channel, "")
	if status != http.StatusOK {
		t.Fatalf("presence: %d %s", status, body)
	}
	var p presenceResponse
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Channel != channel || p.Members == nil {
		t.Fatalf("presence body %s: %v", body, err)
	}
	return p.Members
}

// psReadEvent reads the next frame as an envelope, failing on anything else.
func psReadEvent(t *testing.T, c *websocket.Conn) pubsub.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), psWait)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var ev pubsub.Envelope
	if err := json.Unmarshal(b, &ev); typ != websocket.MessageText || err != nil {
		t.Fatalf("frame %q (type %v) is not a JSON text frame: %v", b, typ, err)
	}
	return ev
}

// psExpectMessage reads the next frame and checks it is a message from from
// whose "data" (or, if b64, "data_b64") is data.
func psExpectMessage(t *testing.T, c *websocket.Conn, from, data string, b64 bool) {
	t.Helper()
	ev := psReadEvent(t, c)
	got := ev.Data
	if b64 {
		got = ev.DataB64
	}
	if ev.Type != pubsub.EventMessage || ev.Channel != "room" || ev.From != from || got == nil || *got != data {
		t.Fatalf("frame %+v, want message %q from %s", ev, data, from)
	}
}

// psExpectMember reads the next frame and checks it is a join or leave of id.
func psExpectMember(t *testing.T, c *websocket.Conn, typ pubsub.EventType, id string) *pubsub.Member {
	t.Helper()
	ev := psReadEvent(t, c)
	if ev.Type != typ || ev.Member == nil || ev.Member.ID != id {
		t.Fatalf("frame %+v, want %s of %s", ev, typ, id)
	}
	return ev.Member
}

// psExpectClose reads until the connection ends and checks its close status
// and reason.
func psExpectClose(t *testing.T, c *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), psWait)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(ce.Reason, reason) {
			t.Fatalf("connection ended with %v, want close %v %q", err, code, reason)
		}
		return
	}
}

// psWrite sends one frame, failing on error.
func psWrite(t *testing.T, c *websocket.Conn, typ websocket.MessageType, p []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), psWait)
	defer cancel()
	if err := c.Write(ctx, typ, p); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestPubsubBroadcast(t *testing.T) {
	s := newPubsubServer(t, pubsub.Config{})
	a, aID := s.join(t, "room", "ua-a")
	b, bID := s.join(t, "room", "ua-b")
	psExpectMember(t, a, "join", bID)

	status, body := s.post(t, "room", "hello")
	if status != http.StatusOK || body != `{"channel":"room","delivered":2}`+"\n" {
		t.Fatalf("POST /pub: %d %s", status, body)
	}
	psExpectMessage(t, a, "http", "hello", false)
	psExpectMessage(t, b, "http", "hello", false)

	psWrite(t, a, websocket.MessageText, []byte("hi from a"))
	psExpectMessage(t, a, aID, "hi from a", false) // the sender hears itself
	psExpectMessage(t, b, aID, "hi from a", false)

	psWrite(t, b, websocket.MessageBinary, []byte{0, 1, 2})
	psExpectMessage(t, a, bID, "AAEC", true)
	psExpectMessage(t, b, bID, "AAEC", true)

	status, body = s.post(t, "empty", "nobody listens")
	if status != http.StatusOK || body != `{"channel":"empty","delivered":0}`+"\n" {
		t.Errorf("POST to an empty channel: %d %s", status, body)
	}
}

func TestPubsubPresence(t *testing.T) {
	s := newPubsubServer(t, pubsub.Config{})
	if m := s.presence(t, "room"); len(m) != 0 {
		t.Fatalf("presence of an empty channel = %+v", m)
	}
	a, aID := s.join(t, "room", "ua-a")
	b, bID := s.join(t, "room", "ua-b")
	joinB := psExpectMember(t, a, "join", bID)
	if joinB.UserAgent != "ua-b" || !strings.HasPrefix(joinB.RemoteAddr, "127.0.0.1:") || joinB.Joined.IsZero() {
		t.Errorf("join member = %+v", joinB)
	}

	members := s.presence(t, "room")
	if len(members) != 2 || members[0].ID != aID || members[1].ID != bID {
		t.Fatalf("presence = %+v, want a then b", members)
	}
	if members[0].UserAgent != "ua-a" || !strings.HasPrefix(members[0].RemoteAddr, "127.0.0.1:") || members[0].Joined.IsZero() {
		t.Errorf("presence member = %+v", members[0])
	}

	if err := b.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close b: %v", err)
	}
	leave := psExpectMember(t, a, "leave", bID)
	if leave.UserAgent != "ua-b" || leave.RemoteAddr != joinB.RemoteAddr {
		t.Errorf("leave member = %+v, want %+v", leave, joinB)
	}
	if members := s.presence(t, "room"); len(members) != 1 || members[0].ID != aID {
		t.Errorf("presence after b left = %+v", members)
	}
}

func TestPubsubBadRequests(t *testing.T) {
	s := newPubsubServer(t, pubsub.Config{MaxMessage: 16})
	long := strings.Repeat("x", 129)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		errText                  string
	}{
		{"subscribe control", http.MethodGet, "/ws/pubsub/a%01b", "", 400, "queue name"},
		{"subscribe slash", http.MethodGet, "/ws/pubsub/a%2Fb", "", 400, "queue name"},
		{"subscribe long", http.MethodGet, "/ws/pubsub/" + long, "", 400, "queue name"},
		{"publish slash", http.MethodPost, "/pub/a%2fb", "x", 400, "queue name"},
		{"publish long", http.MethodPost, "/pub/" + long, "x", 400, "queue name"},
		{"presence not UTF-8", http.MethodGet, "/presence/a%FFb", "", 400, "queue name"},
		{"publish too big", http.MethodPost, "/pub/room", strings.Repeat("x", 17), 413, "exceeds 16 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.do(t, tc.method, tc.path, tc.body)
			var eb api.Error
			if err := json.Unmarshal([]byte(body), &eb); err != nil || status != tc.status || !strings.Contains(eb.Message, tc.errText) || eb.Code == "" {
				t.Errorf("%s %s: %d %s, want %d with error %q", tc.method, tc.path, status, body, tc.status, tc.errText)
			}
		})
	}

	t.Run("websocket dial", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), psWait)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/ws/pubsub/a%2Fb", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("dial a bad channel: %v, %v; want 400", err, resp)
		}
	})
}

func TestPubsubOversizedFrameClosesOnlyTheSender(t *testing.T) {
	s := newPubsubServer(t, pubsub.Config{MaxMessage: 1024})
	big, bigID := s.join(t, "room", "big")
	ok, okID := s.join(t, "room", "ok")
	psExpectMember(t, big, "join", okID)

	atLimit := strings.Repeat("y", 1024)
	psWrite(t, ok, websocket.MessageText, []byte(atLimit))
	psExpectMessage(t, ok, okID, atLimit, false)
	psExpectMessage(t, big, okID, atLimit, false)

	psWrite(t, big, websocket.MessageText, []byte(strings.Repeat("x", 1025)))
	psExpectClose(t, big, websocket.StatusMessageTooBig, "message exceeds 1024 bytes")
	psExpectMember(t, ok, "leave", bigID)

	if status, body := s.post(t, "room", "still here"); status != http.StatusOK {
		t.Fatalf("POST after the close: %d %s", status, body)
	}
	psExpectMessage(t, ok, "http", "still here", false)
}

func TestPubsubSlowSubscriberIsDropped(t *testing.T) {
	s := newPubsubServer(t, pubsub.Config{Buffer: 16})
	slow, slowID := s.join(t, "room", "slow") // from here on, never reads until dropped
	fast, fastID := s.join(t, "room", "fast")

	// fast reads everything, reporting the slow one's leave.
	slowLeft := make(chan struct{})
	fastErr := make(chan error, 1)
	go func() {
		for {
			_, b, err := fast.Read(context.Background())
			if err != nil {
				fastErr <- err
				return
			}
			var ev pubsub.Envelope
			if json.Unmarshal(b, &ev) == nil && ev.Type == pubsub.EventLeave && ev.Member.ID == slowID {
				close(slowLeft)
				fastErr <- nil
				return
			}
		}
	}()

	// Publish until the slow subscriber's socket and buffer fill up. Every
	// POST must return promptly: nobody waits for the slow reader.
	payload := strings.Repeat("z", 32<<10)
	const maxPosts = 5000
	posts := 0
	for dropped := false; !dropped; {
		select {
		case <-slowLeft:
			dropped = true
			continue
		default:
		}
		if posts == maxPosts {
			t.Fatalf("slow subscriber not dropped after %d messages", maxPosts)
		}
		start := time.Now()
		if status, body := s.post(t, "room", payload); status != http.StatusOK {
			t.Fatalf("POST %d: %d %s", posts, status, body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("POST %d took %v: the publisher was held back", posts, d)
		}
		posts++
	}
	if err := <-fastErr; err != nil {
		t.Fatalf("fast subscriber: %v", err)
	}
	t.Logf("slow subscriber dropped after %d messages", posts)

	psExpectClose(t, slow, websocket.StatusPolicyViolation, "too slow")
	if m := s.presence(t, "room"); len(m) != 1 || m[0].ID != fastID {
		t.Errorf("presence after the drop = %+v", m)
	}
	if st := s.hub.Stats(); st.Dropped != 1 {
		t.Errorf("Stats = %+v, want 1 dropped", st)
	}
}

func TestPubsubHubCloseSendsGoingAway(t *testing.T) {
	s := newPubsubServer(t, pubsub.Config{})
	var conns []*websocket.Conn
	for i := range 3 {
		c, _ := s.join(t, fmt.Sprintf("room%d", i%2), "ua")
		conns = append(conns, c)
	}
	closed := make(chan struct{})
	go func() {
		s.hub.Close()
		close(closed)
	}()
	for _, c := range conns {
		psExpectClose(t, c, websocket.StatusGoingAway, "shutting down")
	}
	select {
	case <-closed:
	case <-time.After(psWait):
		t.Fatal("Hub.Close did not return: a handler is still running")
	}

	late := s.dial(t, "room0", "late")
	psExpectClose(t, late, websocket.StatusGoingAway, "shutting down")
	if status, body := s.post(t, "room0", "x"); status != http.StatusServiceUnavailable {
		t.Errorf("POST after Close: %d %s, want 503", status, body)
	}
}
