package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server"
)

// dashboardSocket opens the dashboard's socket; it is closed at the end of
// the test.
func (s *testServer) dashboardSocket() *websocket.Conn {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL(), "http")+"/api/v1/ws/dashboard", &websocket.DialOptions{HTTPClient: httpClient})
	if err != nil {
		s.t.Fatalf("dashboard socket: %v", err)
	}
	s.t.Cleanup(func() { c.CloseNow() })
	return c
}

// Every dashboard socket gets the same snapshots: the server makes one per
// interval, however many dashboards are open, not one per socket.
func TestDashboardSocketsShareSnapshots(t *testing.T) {
	s := startServer(t, server.Config{})
	const sockets = 8
	start := time.Now()
	conns := make([]*websocket.Conn, sockets)
	for i := range conns {
		conns[i] = s.dashboardSocket()
	}
	opened := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// seen[i] holds socket i's first snapshots made after every socket
	// was open, by their time, with their bytes.
	seen := make([]map[string]string, sockets)
	for i, c := range conns {
		seen[i] = map[string]string{}
		for len(seen[i]) < 4 {
			_, b, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("socket %d: %v", i, err)
			}
			var snap struct{ Time time.Time }
			if err := json.Unmarshal(b, &snap); err != nil {
				t.Fatal(err)
			}
			if snap.Time.After(opened) {
				seen[i][snap.Time.String()] = string(b)
			}
		}
	}
	// Some snapshot reached every socket, byte for byte.
	shared := 0
	for tm, b := range seen[0] {
		all := true
		for _, m := range seen[1:] {
			all = all && m[tm] == b
		}
		if all {
			shared++
		}
	}
	if shared == 0 {
		t.Errorf("no snapshot reached all %d sockets: each socket was made its own", sockets)
	}
	// The server has made one snapshot per interval since the first socket
	// opened (and one at once), not one per socket.
	made := metricValue(t, s, "tabreduce_dashboard_snapshots_total")
	if limit := 2 + time.Since(start)/(400*time.Millisecond); made > float64(limit) {
		t.Errorf("%v snapshots made for %d sockets, want at most %d", made, sockets, limit)
	}
}

// A dashboard socket open when the server shuts down is closed by it.
func TestDashboardSocketEndsAtShutdown(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dashboardSocket()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusGoingAway {
				t.Errorf("want close %v, got %v", websocket.StatusGoingAway, err)
			}
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// metricValue reads one unlabelled metric from /metrics.
func metricValue(t *testing.T, s *testServer, name string) float64 {
	t.Helper()
	body := string(s.get("/metrics").want(t, http.StatusOK).Body)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err != nil {
				t.Fatalf("%s: %q", name, line)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}
