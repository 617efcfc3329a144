package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server"
)

// closeWithin closes the server and fails the test if that takes longer
// than limit.
func closeWithin(t *testing.T, s *testServer, limit time.Duration) {
	t.Helper()
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if d := time.Since(start); d > limit {
		t.Errorf("close with live consumers open: want it under %s, took %s", limit, d)
	}
}

func TestShutdownEndsLiveConsumers(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("sd", "x")
	comet, ws := s.liveConsumers("sd", helloAck)
	closeWithin(t, s, 3*time.Second)
	wantEnded(t, comet, ws, websocket.StatusGoingAway)
}

// TestShutdownWithStalledComet closes the server while a COMET client that
// does not read has writes pending: Close must not wait out the write
// timeout.
func TestShutdownWithStalledComet(t *testing.T) {
	s := startServer(t, server.Config{})
	resp, _, _ := s.openComet("stall")
	defer resp.Body.Close()
	// 48 MiB: more than the socket buffers of both ends hold, where the
	// kernel lets a loopback receive buffer grow to 32 MiB.
	const n = 12
	big := strings.Repeat("x", 4<<20)
	for range n {
		s.push("stall", big)
	}
	// Every message leased to the consumer, and the writes stalled: some
	// stay in flight and the acks have stopped.
	last := int64(-1)
	s.waitStats("stall", "stalls writing to the consumer", func(st queueStats) bool {
		stalled := st.Delivered == n && st.InFlight > 0 && st.Acked == last
		last = st.Acked
		time.Sleep(100 * time.Millisecond)
		return stalled
	})
	closeWithin(t, s, 3*time.Second)
}

func TestShutdownKeepsUnackedMessages(t *testing.T) {
	s := startServer(t, server.Config{})
	keys := s.pushN("keep", 3)
	ws := s.ws("keep", helloAck)
	got := keysOf(ws.nextN(t, 3))
	wantKeys(t, "delivered before shutdown", got, keys)
	ws.send(`{"ack":"keep:2"}`)
	s.waitStats("keep", "has the ack", func(st queueStats) bool { return st.Acked == 1 })

	closeWithin(t, s, 3*time.Second)
	ws.wantClosed(t, websocket.StatusGoingAway)

	s = s.restart()
	wantKeys(t, "after restart", leaseKeys(s.lease("keep", 10, 30).Messages), []string{"keep:1", "keep:3"})
}

// TestShutdownLosesNothing closes the server while a COMET consumer is being
// fed: every message must reach the consumer or still be queued after a
// restart (at least once: some may do both).
func TestShutdownLosesNothing(t *testing.T) {
	s := startServer(t, server.Config{})
	comet := s.comet("flood")
	keys := s.pushN("flood", 500)
	closeWithin(t, s, 3*time.Second)

	seen := map[string]bool{}
	for b := range comet.frames {
		var m message
		if err := json.Unmarshal(b, &m); err == nil {
			seen[m.Key] = true
		}
	}
	delivered := len(seen)
	s = s.restart()
	for _, k := range leaseKeys(s.lease("flood", 1000, 30).Messages) {
		seen[k] = true
	}
	t.Logf("%d delivered before shutdown, %d queued after restart", delivered, len(seen)-delivered)
	for _, k := range keys {
		if !seen[k] {
			t.Errorf("%s was lost: neither delivered before shutdown nor queued after restart", k)
		}
	}
	if st := s.stats("flood"); st.Length != 0 {
		t.Errorf("after restart: want every message leased, got %+v", st)
	}
	s.get("/healthz").want(t, http.StatusOK)
}
