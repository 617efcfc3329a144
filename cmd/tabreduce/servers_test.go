package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
)

// Several `tabreduce serve --store redis://…` are one service. These tests
// run real servers (the binary) on a real redis-server.

// startRedis starts a redis-server for one test (AOF, fsync as given).
func startRedis(t testing.TB, fsync string) *redistest.Server {
	t.Helper()
	r, err := redistest.Start(t.TempDir(), redistest.Options{Fsync: fsync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// startShared starts a server named name on the store at storeURL, with a
// data directory of its own.
func startShared(t testing.TB, bin, storeURL, name string, extra ...string) *proc {
	t.Helper()
	p := startBroker(t, bin, t.TempDir(), "everysec", append([]string{"--store", storeURL, "--name", name}, extra...)...)
	p.name = "serve " + name
	return p
}

// form posts a form and wants 200.
func form(t *testing.T, u string, vals url.Values) []byte {
	t.Helper()
	st, body, err := call(http.MethodPost, u, "application/x-www-form-urlencoded", []byte(vals.Encode()))
	if err != nil || st != http.StatusOK {
		t.Fatalf("POST %s: %d %s %v", u, st, body, err)
	}
	return body
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	st, body, err := call(http.MethodGet, u, "", nil)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return st, body
}

func TestServersShareQueuesAndState(t *testing.T) {
	bin := tabreduceBin(t)
	store := startRedis(t, "everysec").URL("svc")
	a, b := startShared(t, bin, store, "A"), startShared(t, bin, store, "B")

	// A COMET consumer on B wakes for a push on A at once: the push's
	// event reaches B over Redis, nothing polls.
	resp, err := httpClient.Get(b.url + "/c/news")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("COMET on B: %v %v", resp, err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil {
			line = err.Error()
		}
		got <- line
	}()
	pushed := time.Now()
	if st, body, err := call(http.MethodPost, a.url+"/q/news", "text/plain", []byte("hello from A")); err != nil || st != http.StatusOK {
		t.Fatalf("push on A: %d %s %v", st, body, err)
	}
	select {
	case body := <-got:
		if !strings.Contains(body, "hello from A") {
			t.Fatalf("COMET on B got %q", body)
		}
		t.Logf("COMET consumer on B woke %v after the push on A", time.Since(pushed).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("COMET consumer on B never got the push on A")
	}

	// A pause on A holds on B; a resume on B holds on A.
	call(http.MethodPost, a.url+"/q/jobs", "text/plain", []byte("j1"))
	form(t, a.url+"/control/jobs", url.Values{"status": {"stop"}})
	if resp, err := httpClient.Get(b.url + "/q/jobs"); err != nil || resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-Queue-Status") != "paused" {
		t.Errorf("take on B from a queue paused on A: %v %v, want 204 with X-Queue-Status: paused", resp, err)
	} else {
		resp.Body.Close()
	}
	form(t, b.url+"/control/jobs", url.Values{"status": {"start"}})
	if st, body := get(t, a.url+"/q/jobs"); st != http.StatusOK || !strings.Contains(string(body), "j1") {
		t.Errorf("take on A after the resume on B: %d %s", st, body)
	}

	// Key/values and stats are the same everywhere.
	if st, body, err := call(http.MethodPut, a.url+"/kv/greeting", "application/json", []byte(`"hi"`)); err != nil || st/100 != 2 {
		t.Fatalf("PUT /kv on A: %d %s %v", st, body, err)
	}
	if st, body := get(t, b.url+"/kv/greeting"); st != http.StatusOK || !strings.Contains(string(body), "hi") {
		t.Errorf("GET /kv on B: %d %s", st, body)
	}
	if _, body := get(t, b.url+"/stats"); !strings.Contains(string(body), `"news"`) {
		t.Errorf("stats on B do not list the queue made on A: %s", body)
	}
}

func TestServersSharePubSubAndPresence(t *testing.T) {
	bin := tabreduceBin(t)
	store := startRedis(t, "everysec").URL("svc")
	a, b := startShared(t, bin, store, "A"), startShared(t, bin, store, "B")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.url, "http")+"/ws/pubsub/room?events=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	read := func() map[string]any {
		t.Helper()
		_, frame, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read from B's subscriber: %v", err)
		}
		var ev map[string]any
		if err := json.Unmarshal(frame, &ev); err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		return ev
	}
	if ev := read(); ev["type"] != "join" {
		t.Fatalf("first frame %v, want its own join", ev)
	}
	// Presence on A lists B's member, and says where it is.
	var presence struct {
		Members []struct{ ID, Server string }
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := get(t, a.url+"/presence/room")
		if err := json.Unmarshal(body, &presence); err != nil {
			t.Fatalf("presence on A: %s", body)
		}
		if len(presence.Members) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(presence.Members) != 1 || presence.Members[0].Server != "B" {
		t.Fatalf("presence on A = %+v, want B's one member, on B", presence.Members)
	}
	// A message published on A reaches the subscriber on B.
	if st, body, err := call(http.MethodPost, a.url+"/pub/room", "text/plain", []byte("from A")); err != nil || st != http.StatusOK {
		t.Fatalf("POST /pub on A: %d %s %v", st, body, err)
	}
	if ev := read(); ev["type"] != "message" || !strings.Contains(ev["data"].(string), "from A") {
		t.Errorf("B's subscriber got %v, want A's message", ev)
	}
}
