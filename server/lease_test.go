package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
)

// leased is one message of a lease reply.
type leased struct {
	Lease    string    `json:"lease"`
	Key      string    `json:"key"`
	Value    string    `json:"value"`
	Count    int64     `json:"count"`
	Attempts int       `json:"attempts"`
	Deadline time.Time `json:"deadline"`
	Error    string    `json:"error"`
}

type leaseReply struct {
	Queue    string   `json:"queue"`
	Status   string   `json:"status"`
	Messages []leased `json:"messages"`
}

// lease leases up to n messages of queue for visibility seconds.
func (s *testServer) lease(queue string, n int, visibility float64) leaseReply {
	s.t.Helper()
	r := s.do(http.MethodPost, fmt.Sprintf("/api/v1/queues/%s/lease?n=%d&visibility=%g", queue, n, visibility), nil)
	return decode[leaseReply](s.t, r.want(s.t, http.StatusOK))
}

// leaseOne leases the next message of queue, which must have one.
func (s *testServer) leaseOne(queue string, visibility float64) leased {
	s.t.Helper()
	l := s.lease(queue, 1, visibility)
	if len(l.Messages) != 1 {
		s.t.Fatalf("lease from %s: want 1 message, got %+v", queue, l)
	}
	return l.Messages[0]
}

// leaseCall posts body to one of a queue's lease routes (ack, nack, extend).
func (s *testServer) leaseCall(queue, verb string, body any) response {
	s.t.Helper()
	return s.postJSON("/api/v1/queues/"+queue+"/"+verb, body)
}

func leaseKeys(ls []leased) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Key
	}
	return out
}

func TestLeaseAndAck(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("work", 3)
	before := time.Now()
	got := s.lease("work", 2, 30)
	if got.Status != "active" || got.Queue != "work" {
		t.Errorf("want queue work, status active, got %+v", got)
	}
	wantKeys(t, "leased", leaseKeys(got.Messages), []string{"work:1", "work:2"})
	for _, m := range got.Messages {
		if m.Lease == "" || m.Attempts != 0 || m.Count != 1 || m.Deadline.Before(before.Add(29*time.Second)) {
			t.Errorf("want a lease, attempts 0, count 1, deadline ~30 s ahead, got %+v", m)
		}
	}
	if st := s.stats("work"); st.Length != 1 || st.InFlight != 2 {
		t.Errorf("want length 1, in_flight 2, got %+v", st)
	}

	r := s.leaseCall("work", "ack", map[string]any{"leases": []string{got.Messages[0].Lease, "bogus-lease"}}).want(t, http.StatusOK)
	if a := decode[map[string]any](t, r); a["acked"] != 1.0 || fmt.Sprint(a["unknown"]) != "[bogus-lease]" {
		t.Errorf(`want {"acked":1,"unknown":["bogus-lease"]}, got %s`, r.Body)
	}
	s.leaseCall("work", "ack", map[string]string{"lease": got.Messages[0].Lease}).wantError(t, http.StatusNotFound, "lease")
	s.leaseCall("work", "ack", map[string]string{"lease": got.Messages[1].Lease}).want(t, http.StatusOK)
	if st := s.stats("work"); st.Length != 1 || st.InFlight != 0 || st.Acked != 2 {
		t.Errorf("after acks: want length 1, in_flight 0, acked 2, got %+v", st)
	}
	if l := s.leaseOne("work", 30); l.Key != "work:3" {
		t.Errorf("want work:3 next, got %+v", l)
	}
	if l := s.lease("work", 5, 30); len(l.Messages) != 0 {
		t.Errorf("empty queue: want no messages, got %+v", l)
	}
}

func TestLeaseParameters(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("params", 3)
	for _, path := range []string{
		"/api/v1/queues/params/lease?n=0",
		"/api/v1/queues/params/lease?n=-1",
		"/api/v1/queues/params/lease?n=two",
		"/api/v1/queues/params/lease?visibility=-1",
		"/api/v1/queues/params/lease?visibility=soon",
	} {
		s.do(http.MethodPost, path, nil).wantError(t, http.StatusBadRequest)
	}
	// The same parameters as a JSON body.
	r := s.postJSON("/api/v1/queues/params/lease", map[string]any{"n": 2, "visibility": 5}).want(t, http.StatusOK)
	wantKeys(t, "leased by JSON body", leaseKeys(decode[leaseReply](t, r).Messages), []string{"params:1", "params:2"})
}

func TestUnknownLeaseIs404(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("unk", "x")
	for _, verb := range []string{"ack", "nack", "extend"} {
		t.Run(verb, func(t *testing.T) {
			s.leaseCall("unk", verb, map[string]string{"lease": "no-such-lease"}).wantError(t, http.StatusNotFound)
		})
	}
	t.Run("every one of leases unknown", func(t *testing.T) {
		s.leaseCall("unk", "ack", map[string][]string{"leases": {"x", "y"}}).wantError(t, http.StatusNotFound)
	})
	t.Run("ack of a queue that does not exist", func(t *testing.T) {
		s.leaseCall("nosuch", "ack", map[string]string{"lease": "1"}).wantError(t, http.StatusNotFound)
	})
}

func TestNackReturnsToHead(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("nk", 2)
	l := s.leaseOne("nk", 30)
	r := s.leaseCall("nk", "nack", map[string]any{"lease": l.Lease, "error": "boom"}).want(t, http.StatusOK)
	if got := decode[map[string]any](t, r); got["dead_lettered"] != false {
		t.Errorf("want dead_lettered false, got %s", r.Body)
	}
	again := s.leaseOne("nk", 30)
	if again.Key != "nk:1" || again.Attempts != 1 || again.Error != "boom" || again.Count != 2 {
		t.Errorf("want nk:1 back at the head with attempts 1, error boom, count 2, got %+v", again)
	}
	s.leaseCall("nk", "nack", map[string]string{"lease": l.Lease}).wantError(t, http.StatusNotFound)
}

func TestNackDelay(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("later", "x")
	l := s.leaseOne("later", 30)
	s.leaseCall("later", "nack", map[string]any{"lease": l.Lease, "delay": 0.2}).want(t, http.StatusOK)
	if got := s.lease("later", 1, 30); len(got.Messages) != 0 {
		t.Fatalf("during the delay: want no message, got %+v", got)
	}
	var back leaseReply
	eventually(t, "the nacked message returns after its delay", func() bool {
		back = s.lease("later", 1, 30)
		return len(back.Messages) == 1
	})
	if m := back.Messages[0]; m.Key != l.Key || m.Attempts != 1 {
		t.Errorf("want %s with attempts 1, got %+v", l.Key, m)
	}
}

func TestLeaseExpiryRequeuesAtHead(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("exp", 2)
	first := s.leaseOne("exp", 0.2)
	s.waitStats("exp", "the expired lease returns", func(st queueStats) bool { return st.InFlight == 0 })
	again := s.leaseOne("exp", 30)
	if again.Key != first.Key || again.Attempts != 1 {
		t.Errorf("want %s back at the head with attempts 1, got %+v", first.Key, again)
	}
	s.leaseCall("exp", "ack", map[string]string{"lease": first.Lease}).wantError(t, http.StatusNotFound)
}

func TestExtend(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("ext", 2)
	kept := s.leaseOne("ext", 0.2)
	r := s.leaseCall("ext", "extend", map[string]any{"lease": kept.Lease, "visibility": 30}).want(t, http.StatusOK)
	if d := decode[leased](t, r).Deadline; d.Before(time.Now().Add(29 * time.Second)) {
		t.Errorf("want the deadline ~30 s ahead, got %v", d)
	}
	// A second lease as short as the first one was: once it has expired,
	// the first would have too.
	s.leaseOne("ext", 0.2)
	s.waitStats("ext", "the short lease expires", func(st queueStats) bool { return st.Length == 1 })
	if st := s.stats("ext"); st.InFlight != 1 {
		t.Errorf("want the extended lease still in flight, got %+v", st)
	}
	s.leaseCall("ext", "ack", map[string]string{"lease": kept.Lease}).want(t, http.StatusOK)
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(s *testServer, l leased) // ends one lease with a failure
		wantErr string
	}{
		{"nack", func(s *testServer, l leased) {
			s.leaseCall("dl", "nack", map[string]string{"lease": l.Lease, "error": "bad input " + l.Lease}).want(s.t, http.StatusOK)
		}, "bad input"},
		{"expiry", func(s *testServer, l leased) {
			s.waitStats("dl", "the lease expires", func(st queueStats) bool { return st.InFlight == 0 })
		}, "lease expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, server.Config{MaxAttempts: 2})
			s.pushN("dl", 2)
			tt.fail(s, s.leaseOne("dl", 0.2))
			second := s.leaseOne("dl", 0.2)
			if second.Key != "dl:1" || second.Attempts != 1 {
				t.Fatalf("want dl:1 again with attempts 1, got %+v", second)
			}
			tt.fail(s, second)

			st := s.stats("dl")
			if st.Length != 1 || st.InFlight != 0 || st.Dead != 1 {
				t.Errorf("want length 1, in_flight 0, dead 1, got %+v", st)
			}
			dead := s.leaseOne("dl.dead", 30)
			if dead.Value != "value-1" || dead.Attempts != 2 || !strings.Contains(dead.Error, tt.wantErr) {
				t.Errorf("dead letter: want value-1, attempts 2, error %q, got %+v", tt.wantErr, dead)
			}
			if l := s.leaseOne("dl", 30); l.Key != "dl:2" {
				t.Errorf("want dl:2 left in the queue, got %+v", l)
			}
		})
	}
}

func TestDefaultMaxAttempts(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("five", "x")
	for attempt := 1; attempt <= 5; attempt++ {
		l := s.leaseOne("five", 30)
		if l.Attempts != attempt-1 {
			t.Fatalf("lease %d: want attempts %d, got %+v", attempt, attempt-1, l)
		}
		r := s.leaseCall("five", "nack", map[string]string{"lease": l.Lease, "error": "no"}).want(t, http.StatusOK)
		if dead := decode[map[string]any](t, r)["dead_lettered"]; dead != (attempt == 5) {
			t.Fatalf("nack %d: want dead_lettered %v, got %s", attempt, attempt == 5, r.Body)
		}
	}
	if st := s.stats("five"); st.Length != 0 || st.Dead != 1 {
		t.Errorf("want the message dead-lettered after 5 attempts, got %+v", st)
	}
}

func TestQueueStateSurvivesRestart(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("state", 3)
	s.take("state")
	s.control("state", "stop")
	s.setPolicy("state", "broadcast")
	before := s.stats("state")

	s = s.restart()
	if after := s.stats("state"); after != before {
		t.Errorf("want %+v after restart, got %+v", before, after)
	}
	s.get("/q/state").want(t, http.StatusNoContent)
}

func TestLeasesSurviveRestart(t *testing.T) {
	s := startServer(t, server.Config{MaxAttempts: 5})
	s.pushN("durable", 4)
	expired := s.leaseOne("durable", 0.2)
	s.waitStats("durable", "the lease expires", func(st queueStats) bool { return st.InFlight == 0 })
	held := s.lease("durable", 2, 30).Messages // durable:1 (attempts 1), durable:2
	wantKeys(t, "leased before restart", leaseKeys(held), []string{expired.Key, "durable:2"})
	s.leaseCall("durable", "ack", map[string]string{"lease": held[1].Lease}).want(t, http.StatusOK)

	s = s.restart()

	got := s.lease("durable", 10, 30).Messages
	wantKeys(t, "leased after restart", leaseKeys(got), []string{"durable:1", "durable:3", "durable:4"})
	if got[0].Attempts != 1 || got[1].Attempts != 0 {
		t.Errorf("want attempts kept (1, 0), got %d, %d", got[0].Attempts, got[1].Attempts)
	}
	s.leaseCall("durable", "ack", map[string]string{"lease": held[0].Lease}).wantError(t, http.StatusNotFound)
	if k := s.push("durable", "after"); k != "durable:5" {
		t.Errorf("ids continue after restart: want durable:5, got %s", k)
	}
}

// TestPurgeEndsLeases: a lease taken before a purge must not ack, nack or
// extend a message pushed after it, even one that reuses the key.
func TestPurgeEndsLeases(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("reuse", "before purge")
	old := s.leaseOne("reuse", 30)
	s.do(http.MethodDelete, "/q/reuse", nil).want(t, http.StatusOK)
	s.push("reuse", "after purge")
	fresh := s.leaseOne("reuse", 30)
	if old.Key != "reuse:1" || fresh.Key != "reuse:2" {
		t.Fatalf("want ids to go on after a purge (reuse:1, then reuse:2), got %s then %s", old.Key, fresh.Key)
	}
	if fresh.Lease == old.Lease {
		t.Errorf("want a lease id other than the purged one, got %q for both", old.Lease)
	}
	s.leaseCall("reuse", "ack", map[string]string{"lease": old.Lease}).wantError(t, http.StatusNotFound)
	if st := s.stats("reuse"); st.InFlight != 1 || st.Acked != 0 {
		t.Errorf("want the new message still leased, got %+v", st)
	}
}
