package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

// peekReply is GET /api/v1/queues/{queue}/messages.
type peekReply struct {
	Queue    string `json:"queue"`
	Messages []struct {
		Key       string `json:"key"`
		Value     string `json:"value"`
		Encoding  string `json:"encoding"`
		Size      int    `json:"size"`
		Truncated bool   `json:"truncated"`
		Count     int64  `json:"count"`
		Attempts  int    `json:"attempts"`
		Error     string `json:"error"`
	} `json:"messages"`
	NextAfter uint64 `json:"next_after"`
}

// A dead-letter queue's messages can be looked at, with their attempts and
// last error, without taking them; pages go on by id; a long value is cut.
func TestPeekMessages(t *testing.T) {
	s := startServer(t, server.Config{MaxAttempts: 2})
	s.pushN("pk", 1)
	for range 2 {
		l := s.leaseOne("pk", 30)
		s.leaseCall("pk", "nack", map[string]any{"lease": l.Lease, "error": "cannot parse"}).want(t, http.StatusOK)
	}
	dead := decode[peekReply](t, s.get("/api/v1/queues/pk.dead/messages").want(t, http.StatusOK))
	if len(dead.Messages) != 1 || dead.Messages[0].Value != "value-1" || dead.Messages[0].Attempts != 2 ||
		dead.Messages[0].Error != "cannot parse" || dead.NextAfter != 0 {
		t.Fatalf("peek pk.dead: %+v", dead)
	}
	if st := s.stats("pk.dead"); st.Length != 1 || st.Delivered != 0 {
		t.Errorf("after a peek pk.dead is %+v: want its message waiting, never delivered", st)
	}

	s.pushN("many", 5)
	s.postJSON("/api/v1/queues/many/messages", []any{map[string]string{"value_b64": "AAH/"}, strings.Repeat("é", 3000)}).want(t, http.StatusCreated)
	page := decode[peekReply](t, s.get("/api/v1/queues/many/messages?limit=3").want(t, http.StatusOK))
	if len(page.Messages) != 3 || page.Messages[0].Key != "many:1" || page.NextAfter != 3 {
		t.Fatalf("first page: %+v", page)
	}
	page = decode[peekReply](t, s.get("/api/v1/queues/many/messages?after=3&limit=10").want(t, http.StatusOK))
	if len(page.Messages) != 4 || page.Messages[0].Key != "many:4" || page.NextAfter != 0 {
		t.Fatalf("second page: %+v", page)
	}
	bin, long := page.Messages[2], page.Messages[3]
	if bin.Value != "AAH/" || bin.Encoding != "base64" || bin.Size != 3 {
		t.Errorf("binary value: %+v", bin)
	}
	if !long.Truncated || long.Size != 6000 || len(long.Value) > 4096 || len(long.Value) < 4000 || strings.Trim(long.Value, "é") != "" {
		t.Errorf("long value: truncated %v, size %d, %d bytes shown (want whole characters)", long.Truncated, long.Size, len(long.Value))
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?after=x"} {
		s.get("/api/v1/queues/many/messages"+q).wantError(t, http.StatusBadRequest)
	}
	empty := decode[peekReply](t, s.get("/api/v1/queues/nosuchqueue/messages").want(t, http.StatusOK))
	if len(empty.Messages) != 0 {
		t.Errorf("an unknown queue: %+v", empty)
	}
}

// Peeking needs the read token unless the queue is public.
func TestPeekNeedsTheToken(t *testing.T) {
	s := startServer(t, server.Config{Token: testToken, PublicRead: []string{"pub.*"}})
	s.as("").get("/api/v1/queues/secret/messages").wantError(t, http.StatusUnauthorized)
	s.as("").get("/api/v1/queues/pub.x/messages").want(t, http.StatusOK)
	s.get("/api/v1/queues/secret/messages").want(t, http.StatusOK)
	s.as("").do(http.MethodPost, "/api/v1/queues/pub.x.dead/requeue", nil).wantError(t, http.StatusUnauthorized)
}

// Requeue moves a dead-letter queue's messages back to their queue as new
// messages, one transaction each; a dead letter a consumer holds stays.
func TestRequeue(t *testing.T) {
	s := startServer(t, server.Config{MaxAttempts: 2})
	s.pushN("rq", 2)
	for range 2 {
		for _, l := range s.lease("rq", 2, 30).Messages {
			s.leaseCall("rq", "nack", map[string]any{"lease": l.Lease, "error": "cannot parse"}).want(t, http.StatusOK)
		}
	}
	if st := s.stats("rq.dead"); st.Length != 2 {
		t.Fatalf("rq.dead: %+v, want 2 dead letters", st)
	}
	held := s.leaseOne("rq.dead", 30) // a consumer looks at one meanwhile
	r := s.do(http.MethodPost, "/api/v1/queues/rq.dead/requeue", nil).want(t, http.StatusOK)
	if string(r.Body) != `{"into":"rq","queue":"rq.dead","requeued":1}`+"\n" {
		t.Errorf("requeue: %s", r.Body)
	}
	back := decode[peekReply](t, s.get("/api/v1/queues/rq/messages").want(t, http.StatusOK))
	if len(back.Messages) != 1 || back.Messages[0].Attempts != 0 || back.Messages[0].Error != "" || back.Messages[0].Value == held.Value {
		t.Errorf("rq after the requeue: %+v; want the dead letter not held, as a new message", back)
	}
	if st := s.stats("rq.dead"); st.Length != 0 || st.InFlight != 1 {
		t.Errorf("rq.dead after the requeue: %+v, want only the held one", st)
	}
	// The held one fails again: it stays a dead letter (no rq.dead.dead).
	s.leaseCall("rq.dead", "nack", map[string]any{"lease": held.Lease, "error": "still bad"}).want(t, http.StatusOK)
	s.leaseCall("rq.dead", "nack", map[string]any{"lease": s.leaseOne("rq.dead", 30).Lease, "error": "still bad"}).want(t, http.StatusOK)
	if st := s.stats("rq.dead"); st.Length != 1 {
		t.Errorf("rq.dead: %+v, want its dead letter back", st)
	}
	if q := decode[[]string](t, s.get("/q").want(t, http.StatusOK)); slices.Contains(q, "rq.dead.dead") {
		t.Errorf("queues %q: a dead letter was dead-lettered again", q)
	}
	s.do(http.MethodPost, "/api/v1/queues/rq/requeue", nil).wantError(t, http.StatusBadRequest, "not a dead-letter queue")
	s.do(http.MethodPost, "/api/v1/queues/rq.dead/requeue?limit=0", nil).wantError(t, http.StatusBadRequest, "limit")
	n := decode[map[string]any](t, s.do(http.MethodPost, "/api/v1/queues/rq.dead/requeue?limit=5", nil).want(t, http.StatusOK))
	if n["requeued"] != 1.0 {
		t.Errorf("second requeue: %v", n)
	}
}
