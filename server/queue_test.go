package server_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

func TestPushForms(t *testing.T) {
	s := startServer(t, server.Config{})
	s.runPushCases(t, "forms", []pushCase{
		{"form value", func() response { return s.postForm("/q/forms", url.Values{"value": {"v1"}}) }, "v1"},
		{"form msg", func() response { return s.postForm("/q/forms", url.Values{"msg": {"v2"}}) }, "v2"},
		{"raw body", func() response {
			return s.do(http.MethodPost, "/q/forms", strings.NewReader("v3 raw"), "Content-Type", "text/plain")
		}, "v3 raw"},
		{"multipart", func() response {
			var b bytes.Buffer
			b.WriteString("--XX\r\nContent-Disposition: form-data; name=\"value\"\r\n\r\nv4\r\n--XX--\r\n")
			return s.do(http.MethodPost, "/q/forms", &b, "Content-Type", "multipart/form-data; boundary=XX")
		}, "v4"},
	})
}

func TestPushKeyAsJSON(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("j", "first")
	r := s.do(http.MethodPost, "/q/j", strings.NewReader("second"), "Accept", "application/json").want(t, http.StatusOK)
	if got := decode[map[string]string](t, r); got["key"] != "j:2" || len(got) != 1 {
		t.Errorf(`want {"key":"j:2"}, got %s`, r.Body)
	}
}

func TestTakeIsFIFOAndEmptyIs204(t *testing.T) {
	s := startServer(t, server.Config{})
	var keys []string
	for _, v := range []string{"a", "b", "c"} {
		keys = append(keys, s.push("fifo", v))
	}
	wantKeys(t, "pushed", keys, []string{"fifo:1", "fifo:2", "fifo:3"})
	for i, v := range []string{"a", "b", "c"} {
		if m := s.take("fifo"); m.Key != keys[i] || m.Value != v || m.Count != 0 || m.Encoding != "" {
			t.Errorf("take %d: want {%s %q count 0}, got %+v", i, keys[i], v, m)
		}
	}
	r := s.get("/q/fifo").want(t, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Errorf("empty queue: want no body, got %q", r.Body)
	}
	if st := r.Header.Get("X-Queue-Status"); st != "" {
		t.Errorf("empty, active queue: want no X-Queue-Status, got %q", st)
	}
	if k := s.push("fifo", "d"); k != "fifo:4" {
		t.Errorf("ids go on after the queue emptied: want fifo:4, got %s", k)
	}
}

func TestBinaryValueComesBackBase64(t *testing.T) {
	s := startServer(t, server.Config{})
	raw := []byte{0xff, 0x00, 0xfe, 'x'}
	s.do(http.MethodPost, "/q/bin", bytes.NewReader(raw), "Content-Type", "application/octet-stream").want(t, http.StatusOK)
	m := s.take("bin")
	if m.Encoding != "base64" {
		t.Fatalf(`want "encoding":"base64", got %+v`, m)
	}
	got, err := base64.StdEncoding.DecodeString(m.Value)
	if err != nil || !bytes.Equal(got, raw) {
		t.Errorf("want value %x, got %x (%v)", raw, got, err)
	}
}

func TestMessageTTL(t *testing.T) {
	s := startServer(t, server.Config{})
	s.postForm("/q/ttl", url.Values{"value": {"short"}, "ttl": {"0.2"}}).want(t, http.StatusOK)
	s.do(http.MethodPost, "/q/ttl?ttl=0.2", strings.NewReader("short too"), "Content-Type", "text/plain").want(t, http.StatusOK)
	s.push("ttl", "forever")
	s.waitStats("ttl", "drops the expired messages", func(st queueStats) bool { return st.Length == 1 })
	if m := s.take("ttl"); m.Value != "forever" {
		t.Errorf("want the message without a ttl, got %+v", m)
	}
}

func TestListQueues(t *testing.T) {
	s := startServer(t, server.Config{})
	if got := decode[[]string](t, s.get("/q").want(t, http.StatusOK)); got == nil || len(got) != 0 {
		t.Errorf("no queues: want [], got %v", got)
	}
	for _, q := range []string{"zeta", "alpha", "mid.q-1_x"} {
		s.push(q, "x")
	}
	got := decode[[]string](t, s.get("/q").want(t, http.StatusOK))
	wantKeys(t, "GET /q", got, []string{"alpha", "mid.q-1_x", "zeta"})
}

func TestPurge(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("gone", 3)
	s.push("kept", "x")
	s.control("gone", "stop")
	s.setPolicy("gone", "roundrobin")

	r := s.do(http.MethodDelete, "/q/gone", nil).want(t, http.StatusOK)
	if want := `{"queue":"gone","status":1}` + "\r\n"; string(r.Body) != want {
		t.Errorf("DELETE /q/gone: want RestMQ's %q, got %q", want, r.Body)
	}
	// As in RestMQ, the queue is emptied, not forgotten: it keeps its
	// status, its policy and its ids.
	if st := s.stats("gone"); st.Length != 0 || st.InFlight != 0 || st.Status != "paused" || st.Policy != "roundrobin" {
		t.Errorf("after purge: want an empty, paused, round-robin queue, got %+v", st)
	}
	s.control("gone", "start")
	s.get("/q/gone").want(t, http.StatusNoContent)
	if k := s.push("gone", "again"); k != "gone:4" {
		t.Errorf("first key after purge: want gone:4, got %s", k)
	}
	if st := s.stats("kept"); st.Length != 1 {
		t.Errorf("another queue: want length 1, got %+v", st)
	}
	// Nothing to purge says so with status 0.
	s.take("gone")
	r = s.do(http.MethodDelete, "/q/gone", nil).want(t, http.StatusOK)
	if want := `{"queue":"gone","status":0}` + "\r\n"; string(r.Body) != want {
		t.Errorf("DELETE /q/gone when empty: want %q, got %q", want, r.Body)
	}
}

func TestStats(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("st", 4)
	s.take("st")
	l := s.lease("st", 2, 30)
	s.postJSON("/api/v1/queues/st/ack", map[string]string{"lease": l.Messages[0].Lease}).want(t, http.StatusOK)

	want := queueStats{Name: "st", Length: 1, InFlight: 1, Status: "active", Policy: "broadcast", Pushed: 4, Delivered: 3, Acked: 1}
	if got := s.stats("st"); got != want {
		t.Errorf("GET /stats/st: want %+v, got %+v", want, got)
	}
	type entry struct {
		Len int64 `json:"len"`
		queueStats
	}
	for _, path := range []string{"/stats", "/stats/"} {
		all := decode[struct {
			Queues map[string]entry `json:"queues"`
			Count  int              `json:"count"`
			Uptime *float64         `json:"uptime_seconds"`
		}](t, s.get(path).want(t, http.StatusOK))
		if e := all.Queues["st"]; len(all.Queues) != 1 || all.Count != 1 || e.queueStats != want || e.Len != 1 {
			t.Errorf("GET %s: want RestMQ's {\"queues\": {\"st\": %+v}, \"count\": 1}, got %+v", path, want, all)
		}
		if all.Uptime == nil || *all.Uptime < 0 {
			t.Errorf("GET %s: want uptime_seconds >= 0, got %v", path, all.Uptime)
		}
	}
	one := decode[map[string]any](t, s.get("/stats/st"))
	if _, ok := one["uptime_seconds"].(float64); !ok {
		t.Errorf("GET /stats/st: want uptime_seconds, got %v", one)
	}
	// An unknown queue is an empty one, as in RestMQ.
	if got := s.stats("nosuch"); got != (queueStats{Name: "nosuch", Status: "active", Policy: "broadcast"}) {
		t.Errorf("GET /stats/nosuch: want an empty queue, got %+v", got)
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	s := startServer(t, server.Config{})
	s.get("/healthz").want(t, http.StatusOK)
	s.pushN("metered", 2)
	s.pushN("other", 1)
	s.take("other")

	body := string(s.get("/metrics").want(t, http.StatusOK).Body)
	for _, want := range []string{
		`tabreduce_queue_length{queue="metered"} 2`,
		`tabreduce_queue_length{queue="other"} 0`,
		`tabreduce_queue_pushed_total{queue="metered"} 2`,
		`# TYPE tabreduce_http_request_duration_seconds histogram`,
		`tabreduce_http_request_duration_seconds_bucket{method="POST",route="/api/v1/queues/:queue/messages",status="201",le="+Inf"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics: want a line with %q", want)
		}
	}
}
