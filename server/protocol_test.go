package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

// protocol sends one command of RestMQ's JSON protocol as form field body.
func (s *testServer) protocol(cmd string) response {
	s.t.Helper()
	return s.postForm("/queue", url.Values{"body": {cmd}})
}

func TestProtocolAdd(t *testing.T) {
	s := startServer(t, server.Config{})
	tests := []struct {
		name      string
		send      func() response
		echo      string // the "value" the answer echoes, as JSON
		wantValue string // the message stored
	}{
		{"form body", func() response { return s.protocol(`{"cmd":"add","queue":"test","value":"hello"}`) }, `"hello"`, "hello"},
		{"form msg", func() response {
			return s.postForm("/queue", url.Values{"msg": {`{"cmd":"add","queue":"test","value":"via msg"}`}})
		}, `"via msg"`, "via msg"},
		{"raw JSON", func() response { return s.postJSON("/queue", `{"cmd":"add","queue":"test","value":"raw"}`) }, `"raw"`, "raw"},
		{"JSON value as text", func() response {
			return s.postJSON("/queue", `{"cmd":"add","queue":"test","value":{"a":[1,2]}}`)
		}, `{"a":[1,2]}`, `{"a":[1,2]}`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send().want(t, http.StatusOK)
			want := fmt.Sprintf(`{"queue":"test","value":%s,"key":"test:%d"}`+"\n", tt.echo, i+1)
			if string(r.Body) != want {
				t.Errorf("%v: want dispatch.py's %q", r, want)
			}
			if m := s.take("test"); m.Key != fmt.Sprintf("test:%d", i+1) || m.Value != tt.wantValue {
				t.Errorf("take: want test:%d %q, got %+v", i+1, tt.wantValue, m)
			}
		})
	}
}

func TestProtocolGetIsSoft(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("test", "first")
	s.push("test", "second")
	for count := int64(1); count <= 3; count++ {
		m := decode[message](t, s.protocol(`{"cmd":"get","queue":"test"}`).want(t, http.StatusOK))
		if m.Key != "test:1" || m.Value != "first" || m.Count != count {
			t.Errorf("get %d: want {test:1 first count %d}, got %+v", count, count, m)
		}
	}
	if st := s.stats("test"); st.Length != 2 {
		t.Errorf("soft gets remove nothing: want length 2, got %+v", st)
	}
	m := decode[message](t, s.postJSON("/queue", `{"cmd":"take","queue":"test"}`).want(t, http.StatusOK))
	if m.Key != "test:1" || m.Value != "first" {
		t.Errorf("take: want test:1, got %+v", m)
	}
	if m := s.take("test"); m.Key != "test:2" {
		t.Errorf("want test:2 left, got %+v", m)
	}
	s.protocol(`{"cmd":"get","queue":"test"}`).wantRestMQError(t, "empty queue")
	s.protocol(`{"cmd":"take","queue":"test"}`).wantRestMQError(t, "empty queue")
}

func TestProtocolDel(t *testing.T) {
	s := startServer(t, server.Config{})
	s.pushN("test", 3)
	r := s.protocol(`{"cmd":"del","key":"test:2"}`).want(t, http.StatusOK)
	if got := decode[map[string]any](t, r); got["deleted"] != true {
		t.Errorf(`want "deleted": true, got %s`, r.Body)
	}
	r = s.protocol(`{"cmd":"del","key":"test:2"}`).want(t, http.StatusOK)
	if got := decode[map[string]any](t, r); got["deleted"] != false {
		t.Errorf(`deleting it again: want "deleted": false, got %s`, r.Body)
	}
	// A leased message can be deleted too.
	s.leaseOne("test", 30)
	s.protocol(`{"cmd":"del","key":"test:1"}`).want(t, http.StatusOK)
	wantKeys(t, "left", s.takeAll("test"), []string{"test:3"})
	if st := s.stats("test"); st.Length != 0 || st.InFlight != 0 {
		t.Errorf("want an empty queue, got %+v", st)
	}
}

func TestProtocolErrors(t *testing.T) {
	s := startServer(t, server.Config{})
	tests := []struct {
		name, cmd, wantSub string
	}{
		{"malformed JSON", `{"cmd":`, "malformed"},
		{"no cmd", `{"queue":"test"}`, "cmd"},
		{"bad queue", `{"cmd":"add","queue":"no/way","value":"x"}`, "queue name"},
		{"add without value", `{"cmd":"add","queue":"test"}`, "value"},
		{"bad key", `{"cmd":"del","key":"nocolon"}`, "key"},
		{"negative ttl", `{"cmd":"add","queue":"test","value":"x","ttl":-1}`, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.protocol(tt.cmd).wantError(t, http.StatusBadRequest, tt.wantSub)
		})
	}
	s.postForm("/queue", url.Values{"other": {"x"}}).wantError(t, http.StatusBadRequest, "malformed JSON")
	s.protocol(`{"cmd":"explode","queue":"test"}`).wantRestMQError(t, "null resultset")
	if got := decode[[]string](t, s.get("/q")); len(got) != 0 {
		t.Errorf("after the refused commands: want no queue, got %q", got)
	}
}

func TestRootShortcuts(t *testing.T) {
	s := startServer(t, server.Config{})
	s.postForm("/", url.Values{"queue": {"root"}, "value": {"v1"}}).want(t, http.StatusOK)
	r := s.postForm("/", url.Values{"queue": {"root"}, "msg": {"v2"}, "ttl": {"60"}}).want(t, http.StatusOK)
	if string(r.Body) != "root:2\r\n" {
		t.Errorf("want key root:2 and \\r\\n, got %q", r.Body)
	}
	s.postForm("/", url.Values{"value": {"x"}}).wantError(t, http.StatusBadRequest, "queue")
	s.postForm("/", url.Values{"queue": {"root"}}).wantError(t, http.StatusBadRequest, "value")

	for _, want := range []string{"v1", "v2"} {
		if m := decode[message](t, s.get("/?queue=root").want(t, http.StatusOK)); m.Value != want {
			t.Errorf("GET /?queue=root: want %q, got %+v", want, m)
		}
	}
	s.get("/?queue=root").wantError(t, http.StatusNotFound)
	s.get("/?queue=never").wantError(t, http.StatusNotFound)

	// GET / redirects as RestMQ's does, to the landing page.
	root := s.get("/").want(t, http.StatusFound)
	if loc := root.Header.Get("Location"); loc != "/static/index.html" {
		t.Errorf("GET /: want a redirect to /static/index.html, got %q", loc)
	}
	page := s.get("/static/index.html").want(t, http.StatusOK)
	if ct := page.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /static/index.html: want text/html, got %q", ct)
	}
	if !strings.Contains(strings.ToLower(string(page.Body)), "<html") {
		t.Errorf("GET /static/index.html: want the landing page, got %q", truncate(string(page.Body), 100))
	}
}

func TestJSONP(t *testing.T) {
	tests := []struct {
		name  string
		jsonp bool
		check func(t *testing.T, r response)
	}{
		{"off by default", false, func(t *testing.T, r response) {
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("want plain JSON, got Content-Type %q", ct)
			}
			if m := decode[message](t, r); m.Value != "v" {
				t.Errorf("want the message, got %s", r.Body)
			}
		}},
		{"on", true, func(t *testing.T, r response) {
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
				t.Errorf("want application/javascript, got %q", ct)
			}
			if b := string(r.Body); !strings.HasPrefix(b, "fn({") || !strings.HasSuffix(b, "});\r\n") {
				t.Errorf("want RestMQ's fn({...});\\r\\n, got %q", b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, server.Config{JSONP: tt.jsonp})
			s.push("p", "v")
			tt.check(t, s.get("/q/p?callback=fn").want(t, http.StatusOK))
			stats := s.get("/stats?callback=fn").want(t, http.StatusOK)
			if tt.jsonp != strings.HasPrefix(string(stats.Body), "fn(") {
				t.Errorf("/stats with JSONP %v: got %q", tt.jsonp, truncate(string(stats.Body), 60))
			}
		})
	}
	t.Run("bad callback", func(t *testing.T) {
		s := startServer(t, server.Config{JSONP: true})
		s.push("p", "v")
		s.get("/q/p?callback=alert(1)").wantError(t, http.StatusBadRequest, "callback")
		s.get("/?queue=p&callback=alert(1)").wantError(t, http.StatusBadRequest, "callback")
		// A refused request takes nothing.
		if m := s.take("p"); m.Value != "v" {
			t.Errorf("want the message still there, got %+v", m)
		}
	})
}
