package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

// control sets a queue's status to stop or start; RestMQ answers
// {"stat": {"queue": q, "status": 0|1}}.
func (s *testServer) control(queue, status string) {
	s.t.Helper()
	r := s.postForm("/control/"+queue, url.Values{"status": {status}}).want(s.t, http.StatusOK)
	want := fmt.Sprintf(`{"stat":{"queue":%q,"status":%d}}`+"\r\n", queue, map[string]int{"start": 1, "stop": 0}[status])
	if string(r.Body) != want {
		s.t.Fatalf("POST /control/%s: want %q, got %q", queue, want, r.Body)
	}
}

// wantControl fails the test unless GET /control/{queue} answers RestMQ's
// {"queue": q, "status": {"queue": q, "status": code}}.
func (s *testServer) wantControl(queue string, code int) {
	s.t.Helper()
	r := s.get("/control/"+queue).want(s.t, http.StatusOK)
	want := fmt.Sprintf(`{"queue":%q,"status":{"queue":%q,"status":%d}}`+"\r\n", queue, queue, code)
	if string(r.Body) != want {
		s.t.Errorf("GET /control/%s: want %q, got %q", queue, want, r.Body)
	}
}

// wantPolicy fails the test unless GET /p/{queue} answers RestMQ's
// {"queue": q, "value": policy}.
func (s *testServer) wantPolicy(queue, policy string) {
	s.t.Helper()
	r := s.get("/p/"+queue).want(s.t, http.StatusOK)
	want := fmt.Sprintf(`{"queue":%q,"value":%q}`+"\r\n", queue, policy)
	if string(r.Body) != want {
		s.t.Errorf("GET /p/%s: want %q, got %q", queue, want, r.Body)
	}
}

// setPolicy sets a queue's live-delivery policy; RestMQ answers "OK\r\n".
func (s *testServer) setPolicy(queue, policy string) {
	s.t.Helper()
	r := s.postForm("/p/"+queue, url.Values{"policy": {policy}}).want(s.t, http.StatusOK)
	if string(r.Body) != "OK\r\n" {
		s.t.Fatalf("POST /p/%s: want %q, got %q", queue, "OK\r\n", r.Body)
	}
}

func TestControlStatus(t *testing.T) {
	s := startServer(t, server.Config{})
	s.wantControl("fresh", 1)
	s.control("fresh", "stop")
	s.wantControl("fresh", 0)
	if st := s.stats("fresh"); st.Status != "paused" {
		t.Errorf("stats after stop: want status paused, got %+v", st)
	}
	s.control("fresh", "start")
	if st := s.stats("fresh"); st.Status != "active" {
		t.Errorf("stats after start: want status active, got %+v", st)
	}
	s.postForm("/control/fresh", url.Values{"status": {"pause"}}).wantError(t, http.StatusBadRequest, "stop or start")
	s.postForm("/control/fresh", nil).wantError(t, http.StatusBadRequest)
}

func TestPausedQueueDeliversNothing(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("held", "one")
	s.control("held", "stop")
	comet, ws := s.liveConsumers("held", helloNoAck)
	s.push("held", "two")

	r := s.get("/q/held").want(t, http.StatusNoContent)
	if st := r.Header.Get("X-Queue-Status"); st != "paused" {
		t.Errorf("GET /q/held: want X-Queue-Status paused, got %q", st)
	}
	if l := s.lease("held", 5, 30); l.Status != "paused" || len(l.Messages) != 0 {
		t.Errorf("lease: want no messages and status paused, got %+v", l)
	}
	s.protocol(`{"cmd":"get","queue":"held"}`).wantRestMQError(t, "queue paused")
	s.protocol(`{"cmd":"take","queue":"held"}`).wantRestMQError(t, "queue paused")
	s.get("/?queue=held").wantError(t, http.StatusNotFound)
	comet.wantNothing(t)
	ws.wantNothing(t)
	if st := s.stats("held"); st.Length != 2 || st.InFlight != 0 || st.Delivered != 0 {
		t.Errorf("paused: want length 2, nothing delivered, got %+v", st)
	}

	// On start the live consumers get the backlog, each all of it (the
	// default policy, broadcast).
	s.control("held", "start")
	for _, st := range []*stream{comet, ws.stream} {
		wantKeys(t, st.name+" backlog after start", keysOf(st.nextN(t, 2)), []string{"held:1", "held:2"})
	}
	s.waitStats("held", "is drained", func(st queueStats) bool { return st.Length == 0 && st.InFlight == 0 })
	s.push("held", "three")
	for _, st := range []*stream{comet, ws.stream} {
		wantKeys(t, st.name+" after start", keysOf(st.nextN(t, 1)), []string{"held:3"})
	}
}

func TestPolicy(t *testing.T) {
	s := startServer(t, server.Config{})
	s.wantPolicy("pol", "broadcast")
	s.setPolicy("pol", "roundrobin")
	s.wantPolicy("pol", "roundrobin")
	s.setPolicy("pol", "broadcast")
	s.wantPolicy("pol", "broadcast")
	s.postForm("/p/pol", url.Values{"policy": {"random"}}).wantError(t, http.StatusBadRequest, "broadcast or roundrobin")
	s.postForm("/p/pol", nil).wantError(t, http.StatusBadRequest)
}

func TestBroadcast(t *testing.T) {
	s := startServer(t, server.Config{})
	s.setPolicy("news", "broadcast")
	a, b := s.comet("news"), s.ws("news", helloNoAck)
	c := s.ws("news", helloAck)
	s.waitConsumers("news", 3)
	keys := s.pushN("news", 3)
	for _, cons := range []*stream{a, b.stream, c.stream} {
		wantKeys(t, cons.name+" got", keysOf(cons.nextN(t, 3)), keys)
	}
	// The message is done once every consumer has it; the acking one holds
	// it until it acks.
	if st := s.stats("news"); st.InFlight != 3 {
		t.Errorf("before the acks: want in_flight 3, got %+v", st)
	}
	c.send(`{"ack":["news:1","news:2","news:3"]}`)
	s.waitStats("news", "is done", func(st queueStats) bool {
		return st.Length == 0 && st.InFlight == 0 && st.Acked == 3
	})
	a.wantNothing(t)
}

func TestRoundRobin(t *testing.T) {
	s := startServer(t, server.Config{})
	s.setPolicy("jobs", "roundrobin")
	a, b := s.liveConsumers("jobs", helloNoAck)
	keys := s.pushN("jobs", 6)
	got := collect(t, 6, a, b.stream)
	for i, g := range got {
		if len(g) == 0 {
			t.Errorf("consumer %d got nothing: want the messages spread, got %q", i, got)
		}
	}
	all := slices.Concat(got...)
	slices.SortFunc(all, func(x, y string) int { return slices.Index(keys, x) - slices.Index(keys, y) })
	wantKeys(t, "each message exactly once", all, keys)
	s.waitStats("jobs", "is done", func(st queueStats) bool { return st.Length == 0 && st.InFlight == 0 })
	a.wantNothing(t)
	b.wantNothing(t)
}
