package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/buntstore"
)

const testToken = "s3cret-token"

// route is one request of the auth table.
type route struct {
	method, path, ctype, body string
}

func (s *testServer) send(r route) response {
	s.t.Helper()
	return s.do(r.method, r.path, strings.NewReader(r.body), "Content-Type", r.ctype)
}

const formType = "application/x-www-form-urlencoded"

// writeRoutes need the token whenever one is set.
var writeRoutes = []route{
	{"POST", "/q/pub.x", "text/plain", "v"},
	{"DELETE", "/q/pub.x", "", ""},
	{"POST", "/", formType, "queue=pub.x&value=v"},
	{"POST", "/queue", "application/json", `{"cmd":"add","queue":"pub.x","value":"v"}`},
	{"POST", "/control/pub.x", formType, "status=start"},
	{"POST", "/p/pub.x", formType, "policy=roundrobin"},
	{"POST", "/api/v1/queues/pub.x/messages", "application/json", `["v"]`},
	{"POST", "/api/v1/queues/pub.x/lease", "", ""},
	{"POST", "/api/v1/queues/pub.x/ack", "application/json", `{"lease":"1"}`},
	{"POST", "/api/v1/queues/pub.x/nack", "application/json", `{"lease":"1"}`},
	{"POST", "/api/v1/queues/pub.x/extend", "application/json", `{"lease":"1"}`},
	{"PUT", "/kv/pub.x", "application/json", `1`},
	{"DELETE", "/kv/pub.x", "", ""},
	{"POST", "/kv/mset", "application/json", `{"pub.x":1}`},
	{"GET", "/metrics", "", ""},
}

// Reads need the token unless PublicRead opens them: publicReadRoutes name
// the queue (or key) pub.x, the others name nothing or "other".
var (
	publicReadRoutes = []route{
		{"GET", "/q/pub.x", "", ""},
		{"GET", "/?queue=pub.x", "", ""},
		{"GET", "/p/pub.x", "", ""},
		{"GET", "/control/pub.x", "", ""},
		{"GET", "/stats/pub.x", "", ""},
		{"GET", "/kv/pub.x", "", ""},
	}
	privateReadRoutes = []route{
		{"GET", "/q/other", "", ""},
		{"GET", "/?queue=other", "", ""},
		{"GET", "/stats/other", "", ""},
		{"GET", "/kv/other", "", ""},
		{"GET", "/q", "", ""},
		{"GET", "/stats", "", ""},
		{"POST", "/kv/mget", "application/json", `["pub.x"]`},
	}
	// liveRoutes are only checked locked: open, they would stream.
	liveRoutes = []route{
		{"GET", "/c/other", "", ""},
		{"GET", "/ws/other", "", ""},
	}
	openRoutes = []route{
		{"GET", "/healthz", "", ""},
		{"GET", "/", "", ""},
	}
)

// wantAuth checks that each route answers 401 with a JSON error when
// locked, and anything but 401 otherwise.
func wantAuth(t *testing.T, s *testServer, locked bool, routes []route) {
	t.Helper()
	for _, r := range routes {
		got := s.send(r)
		switch {
		case locked:
			got.wantError(t, http.StatusUnauthorized, "Bearer")
		case got.Status == http.StatusUnauthorized:
			t.Errorf("%v: want it open, got 401", got)
		}
	}
}

func TestAuthToken(t *testing.T) {
	s := startServer(t, server.Config{Token: testToken})
	all := [][]route{writeRoutes, publicReadRoutes, privateReadRoutes, liveRoutes}
	for _, tc := range []struct {
		name  string
		token string
	}{{"no token", ""}, {"wrong token", "guess"}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, routes := range all {
				wantAuth(t, s.as(tc.token), true, routes)
			}
			wantAuth(t, s.as(tc.token), false, openRoutes)
		})
	}
	t.Run("right token", func(t *testing.T) {
		for _, routes := range [][]route{writeRoutes, publicReadRoutes, privateReadRoutes, openRoutes} {
			wantAuth(t, s, false, routes)
		}
	})
	t.Run("not a bearer", func(t *testing.T) {
		s.as("").get("/q", "Authorization", "Basic "+testToken).wantError(t, http.StatusUnauthorized)
		s.as("").get("/q", "Authorization", testToken).wantError(t, http.StatusUnauthorized)
	})
}

func TestPublicRead(t *testing.T) {
	tests := []struct {
		name        string
		patterns    []string
		openPrivate bool // whether the reads of other names open too
	}{
		{"pattern", []string{"pub.*"}, false},
		{"star", []string{"*"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, server.Config{Token: testToken, PublicRead: tt.patterns})
			anon := s.as("")
			wantAuth(t, anon, false, publicReadRoutes)
			wantAuth(t, anon, true, writeRoutes)
			wantAuth(t, anon, false, openRoutes)
			if tt.openPrivate {
				wantAuth(t, anon, false, privateReadRoutes)
			} else {
				wantAuth(t, anon, true, privateReadRoutes)
				wantAuth(t, anon, true, liveRoutes)
			}
		})
	}
	t.Run("live consumer of a public queue", func(t *testing.T) {
		s := startServer(t, server.Config{Token: testToken, PublicRead: []string{"pub.*"}})
		c := s.as("").comet("pub.live")
		s.push("pub.live", "hi")
		if m := c.next(t); m.Value != "hi" {
			t.Errorf("want hi, got %+v", m)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     server.Config
		wantErr string // "" when Start must succeed
	}{
		{"public address without a token", server.Config{Addr: "0.0.0.0:0"}, "--token"},
		{"public address with a token", server.Config{Addr: "0.0.0.0:0", Token: testToken}, ""},
		{"public address, insecure", server.Config{Addr: "0.0.0.0:0", Insecure: true}, ""},
		{"loopback without a token", server.Config{Addr: "127.0.0.1:0"}, ""},
		{"bad fsync", server.Config{Addr: "127.0.0.1:0", Fsync: "sometimes"}, "fsync"},
		{"unknown store scheme", server.Config{Addr: "127.0.0.1:0", StoreURL: "memcache://:secret@localhost:6379/0"}, `unknown scheme "memcache"`},
		{"redis that is not there", server.Config{Addr: "127.0.0.1:0", StoreURL: "redis://:secret@127.0.0.1:1/0"}, "open store redis://"},
		{"store without a scheme", server.Config{Addr: "127.0.0.1:0", StoreURL: "/tmp/x"}, "is not a URL"},
		{"buntdb with a host", server.Config{Addr: "127.0.0.1:0", StoreURL: "buntdb://host/x"}, "buntdb:///path"},
		{"buntdb in the data dir", server.Config{Addr: "127.0.0.1:0", StoreURL: "buntdb:"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.DataDir = t.TempDir()
			tt.cfg.Logger = slog.New(slog.DiscardHandler)
			srv, err := server.Start(context.Background(), tt.cfg)
			if err == nil {
				defer srv.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("want Start to succeed, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("want an error mentioning %q, got %v", tt.wantErr, err)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Errorf("the error shows the store's password: %v", err)
			}
		})
	}
}

// A store URL chooses where the broker's state lives; a data directory is
// one server's: a second server on it is refused at once.
func TestStoreChoiceAndDataDirLock(t *testing.T) {
	data, elsewhere := t.TempDir(), t.TempDir()
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: data, StoreURL: "buntdb://" + elsewhere, Logger: slog.New(slog.DiscardHandler)}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.Broker().Push(context.Background(), "q", []broker.NewMessage{{Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, buntstore.FileName)); err != nil {
		t.Errorf("the store is not in the directory its URL names: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, buntstore.FileName)); err == nil {
		t.Errorf("a store file was made in the data directory too")
	}
	for _, other := range []server.Config{
		{Addr: "127.0.0.1:0", DataDir: data, StoreURL: "buntdb://" + t.TempDir()},      // same data, other store
		{Addr: "127.0.0.1:0", DataDir: t.TempDir(), StoreURL: "buntdb://" + elsewhere}, // same store
	} {
		other.Logger = slog.New(slog.DiscardHandler)
		if s2, err := server.Start(context.Background(), other); !errors.Is(err, buntstore.ErrLocked) {
			if err == nil {
				s2.Close()
			}
			t.Errorf("a second server on %s / %s: %v, want ErrLocked", other.DataDir, other.StoreURL, err)
		}
	}
}

// A route's own name decides whether PublicRead opens it: ?queue= names
// the queue of GET / alone (RestMQ's hard get), and opens nothing else.
func TestQueryNameOpensNoOtherRoute(t *testing.T) {
	s := startServer(t, server.Config{Token: testToken, PublicRead: []string{"pub.*"}})
	s.push("pub.x", "v")
	job := s.postJSON("/api/v1/jobs", `{"module":"noop","input":"x\n"}`).want(t, http.StatusCreated)
	id := decode[struct{ ID string }](t, job).ID
	anon := s.as("")
	wantAuth(t, anon, true, []route{
		{"GET", "/q?queue=pub.x", "", ""},
		{"GET", "/q/?queue=pub.x", "", ""},
		{"GET", "/stats?queue=pub.x", "", ""},
		{"GET", "/stats/?queue=pub.x", "", ""},
		{"GET", "/control/?queue=pub.x", "", ""},
		{"GET", "/api/v1/jobs?queue=pub.x", "", ""},
		{"GET", "/api/v1/jobs/" + id + "?queue=pub.x", "", ""},
		{"GET", "/api/v1/jobs/" + id + "/output?queue=pub.x", "", ""},
		{"GET", "/api/v1/workers?queue=pub.x", "", ""},
		{"GET", "/api/v1/modules?queue=pub.x", "", ""},
		{"POST", "/kv/mget?queue=pub.x", "application/json", `["other"]`},
		{"GET", "/q/other?queue=pub.x", "", ""},
		{"GET", "/kv/other?queue=pub.x", "", ""},
	})
	wantAuth(t, anon, false, []route{{"GET", "/?queue=pub.x", "", ""}})
}

// A pub/sub socket that read rights alone let in may subscribe, but not
// publish: with PublicRead, an anonymous socket's frames would otherwise
// reach the token holder's subscribers, while POST /pub rightly says 401.
func TestPubSubSocketNeedsWriteRightsToPublish(t *testing.T) {
	s := startServer(t, server.Config{Token: testToken, PublicRead: []string{"pub.*"}})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	dial := func(token string) *websocket.Conn {
		t.Helper()
		opts := &websocket.DialOptions{HTTPClient: httpClient}
		if token != "" {
			opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
		}
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL(), "http")+"/ws/pubsub/pub.room?events=json", opts)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	// next reads the socket's events up to the next of type typ and fails
	// on a message before it.
	next := func(c *websocket.Conn, typ string) map[string]any {
		t.Helper()
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read %s: %v", typ, err)
			}
			var ev map[string]any
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			if ev["type"] == typ {
				return ev
			}
			if ev["type"] == "message" {
				t.Fatalf("waiting for a %s, got the message %v", typ, ev)
			}
		}
	}
	owner := dial(testToken)
	next(owner, "join")
	anon := dial("")
	next(anon, "join")
	next(owner, "join") // the anonymous reader's

	if err := anon.Write(ctx, websocket.MessageText, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	// The anonymous socket is closed with a reason; the owner hears it leave,
	// and no message.
	_, _, err := anon.Read(ctx)
	if st := websocket.CloseStatus(err); st != websocket.StatusPolicyViolation {
		t.Errorf("anonymous publisher: want close %v, got %v", websocket.StatusPolicyViolation, err)
	}
	next(owner, "leave")
	if err := owner.Write(ctx, websocket.MessageText, []byte("real")); err != nil {
		t.Fatal(err)
	}
	if ev := next(owner, "message"); ev["data"] != "real" {
		t.Errorf("the owner's subscription got %v, want only its own message", ev)
	}
	// Read rights still subscribe.
	reader := dial("")
	next(reader, "join")
	s.do("POST", "/pub/pub.room", strings.NewReader("hello"), "Content-Type", "text/plain").want(t, http.StatusOK)
	if ev := next(reader, "message"); ev["data"] != "hello" {
		t.Errorf("reader got %v, want hello", ev)
	}
}
