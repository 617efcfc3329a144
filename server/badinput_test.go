package server_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

// Queue names are any UTF-8 text of 1-128 bytes without '/' or control
// characters, percent-encoded in URLs; a name with '/' is the engine's
// (job/ID/map) and no public route reaches it.
func TestQueueNames(t *testing.T) {
	s := startServer(t, server.Config{})
	bad := []string{
		"a%2Fb", "job%2F1%2Fmap", "nul%00", "tab%09", "del%7F", "c1%C2%85", "not%FFutf8",
		strings.Repeat("n", 129),
	}
	routes := []route{
		{"POST", "/q/%s", "text/plain", "v"},
		{"GET", "/q/%s", "", ""},
		{"DELETE", "/q/%s", "", ""},
		{"GET", "/c/%s", "", ""},
		{"GET", "/ws/%s", "", ""},
		{"POST", "/p/%s", formType, "policy=broadcast"},
		{"GET", "/p/%s", "", ""},
		{"POST", "/control/%s", formType, "status=stop"},
		{"GET", "/control/%s", "", ""},
		{"GET", "/stats/%s", "", ""},
		{"POST", "/api/v1/queues/%s/messages", "application/json", `["v"]`},
		{"POST", "/api/v1/queues/%s/lease", "", ""},
		{"POST", "/api/v1/queues/%s/ack", "application/json", `{"lease":"1"}`},
		{"POST", "/api/v1/queues/%s/nack", "application/json", `{"lease":"1"}`},
		{"POST", "/api/v1/queues/%s/extend", "application/json", `{"lease":"1"}`},
		{"GET", "/?queue=%s", "", ""},
		{"POST", "/", formType, "queue=%s&value=v"},
	}
	for _, name := range bad {
		t.Run(truncate(name, 20), func(t *testing.T) {
			for _, r := range routes {
				r.path = strings.ReplaceAll(r.path, "%s", name)
				r.body = strings.ReplaceAll(r.body, "%s", name)
				s.send(r).wantError(t, http.StatusBadRequest, "queue name")
			}
		})
	}
	wantKeys(t, "queues after bad names", decode[[]string](t, s.get("/q")), nil)

	good := strings.Repeat("n", 128)
	if k := s.push(good, "v"); k != good+":1" {
		t.Errorf("128-byte name: want key %s:1, got %s", good, k)
	}
	names := []string{"a", "A.b-c_d", "0", "has space", "colon:name", "a:b:1", "star*", "dollar$", "café", "semi;colon", "100%", "q?x=1#f", "🙂"}
	for _, name := range names {
		if k := s.push(url.PathEscape(name), name); k != name+":1" {
			t.Errorf("push to %q: key %q, want %q", name, k, name+":1")
		}
	}
	listed := decode[[]string](t, s.get("/q"))
	for _, name := range names {
		if !slices.Contains(listed, name) {
			t.Errorf("GET /q: %q missing from %q", name, listed)
		}
		m := decode[map[string]any](t, s.get("/q/"+url.PathEscape(name)).want(t, http.StatusOK))
		if m["value"] != name || m["key"] != name+":1" {
			t.Errorf("take from %q: %v", name, m)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	s := startServer(t, server.Config{MaxBody: 1024})
	big := strings.Repeat("x", 2048)
	routes := []route{
		{"POST", "/q/big", "text/plain", big},
		{"POST", "/q/big", formType, "value=" + big},
		{"POST", "/", formType, "queue=big&value=" + big},
		{"POST", "/queue", "application/json", `{"cmd":"add","queue":"big","value":"` + big + `"}`},
		{"POST", "/queue", formType, `body={"cmd":"add","queue":"big","value":"` + big + `"}`},
		{"POST", "/api/v1/queues/big/messages", "application/json", `["` + big + `"]`},
		{"POST", "/api/v1/queues/big/lease", "application/json", `{"n":1,"error":"` + big + `"}`},
		{"PUT", "/kv/big", "application/json", `"` + big + `"`},
		{"POST", "/kv/mset", "application/json", `{"big":"` + big + `"}`},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path+" "+r.ctype, func(t *testing.T) {
			s.send(r).wantError(t, http.StatusRequestEntityTooLarge)
			// Without a Content-Length the limit is found while reading.
			s.do(r.method, r.path, io.MultiReader(strings.NewReader(r.body)), "Content-Type", r.ctype).
				wantError(t, http.StatusRequestEntityTooLarge)
		})
	}
	wantKeys(t, "queues after too large bodies", decode[[]string](t, s.get("/q")), nil)
	s.get("/kv/big").wantError(t, http.StatusNotFound)
	s.push("big", strings.Repeat("x", 1000)) // under the limit
}

func TestMalformedInput(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("m", "keep")
	tests := []struct {
		name string
		r    route
		sub  string // the parse error's words
	}{
		// A body that is no form, or a form without value or msg, is the
		// message itself on POST /q/{queue} (restmqcompat); not on POST /,
		// which needs the form's queue.
		{"root form escape", route{"POST", "/", formType, "queue=m&value=%zz"}, "queue"},
		{"root form without value", route{"POST", "/", formType, "queue=m&other=1"}, "value"},
		{"ttl", route{"POST", "/q/m?ttl=soon", "text/plain", "v"}, "ttl"},
		{"negative ttl", route{"POST", "/q/m?ttl=-5", "text/plain", "v"}, "ttl"},
		{"protocol JSON", route{"POST", "/queue", "application/json", `{"cmd":"add",`}, "unexpected end of JSON"},
		{"protocol form escape", route{"POST", "/queue", formType, "body=%zz"}, "malformed JSON"},
		{"batch JSON", route{"POST", "/api/v1/queues/m/messages", "application/json", `["a",`}, "unexpected end of JSON"},
		{"batch not array", route{"POST", "/api/v1/queues/m/messages", "application/json", `{"value":"a"}`}, "array"},
		{"batch empty", route{"POST", "/api/v1/queues/m/messages", "application/json", `[]`}, "no messages"},
		{"NDJSON line", route{"POST", "/api/v1/queues/m/messages", "application/x-ndjson", "\"a\"\n{oops\n"}, "line 2"},
		{"lease JSON", route{"POST", "/api/v1/queues/m/lease", "application/json", `{"n":`}, "malformed JSON"},
		{"lease body", route{"POST", "/api/v1/queues/m/lease", "text/plain", `n=1`}, "JSON object or a form"},
		{"ack without lease", route{"POST", "/api/v1/queues/m/ack", "application/json", `{}`}, "lease"},
		{"nack delay", route{"POST", "/api/v1/queues/m/nack", "application/json", `{"lease":"1","delay":-1}`}, "delay"},
		{"mset JSON", route{"POST", "/kv/mset", "application/json", `{"a":`}, "malformed JSON"},
		{"policy form", route{"POST", "/p/m", formType, "policy=%zz"}, "invalid URL escape"},
		{"control form", route{"POST", "/control/m", formType, "status=%zz"}, "invalid URL escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.send(tt.r).wantError(t, http.StatusBadRequest, tt.sub)
		})
	}
	if st := s.stats("m"); st.Length != 1 || st.Pushed != 1 || st.Status != "active" || st.Policy != "broadcast" {
		t.Errorf("after the rejected requests: want the queue unchanged, got %+v", st)
	}
}

func TestBatchPush(t *testing.T) {
	s := startServer(t, server.Config{})
	r := s.postJSON("/api/v1/queues/b/messages",
		`["text", {"value":"obj"}, {"value_b64":"/wA="}, {"value":"ttl","ttl":60}, {"other":1}, 42, [1,2], null]`).
		want(t, http.StatusCreated)
	if got := decode[map[string]any](t, r); got["count"] != 8.0 {
		t.Errorf("want count 8, got %s", r.Body)
	}
	s.do(http.MethodPost, "/api/v1/queues/b/messages", strings.NewReader("\"nd1\"\n\n{\"value\":\"nd2\"}\n"),
		"Content-Type", "application/x-ndjson").want(t, http.StatusCreated)

	want := []struct{ value, encoding string }{
		{"text", ""}, {"obj", ""}, {"/wA=", "base64"}, {"ttl", ""}, {`{"other":1}`, ""},
		{"42", ""}, {"[1,2]", ""}, {"null", ""}, {"nd1", ""}, {"nd2", ""},
	}
	for i, w := range want {
		m := s.take("b")
		if m.Value != w.value || m.Encoding != w.encoding {
			t.Errorf("message %d: want %q (encoding %q), got %+v", i+1, w.value, w.encoding, m)
		}
	}
	s.get("/q/b").want(t, http.StatusNoContent)
}

func TestBatchIsOneTransaction(t *testing.T) {
	s := startServer(t, server.Config{})
	badBatches := []route{
		{"POST", "/api/v1/queues/%s/messages", "application/json", `["ok", {"value_b64":"!!!"}]`},
		{"POST", "/api/v1/queues/%s/messages", "application/json", `["ok", {"value":"a","value_b64":"YQ=="}]`},
		{"POST", "/api/v1/queues/%s/messages", "application/json", `["ok", {"value":"a","ttl":-1}]`},
		{"POST", "/api/v1/queues/%s/messages", "application/x-ndjson", "\"ok\"\n\"also ok\"\nnot json\n"},
	}
	for _, q := range []string{"fresh", "existing"} {
		t.Run(q, func(t *testing.T) {
			if q == "existing" {
				s.push(q, "first")
			}
			for _, r := range badBatches {
				r.path = strings.ReplaceAll(r.path, "%s", q)
				s.send(r).wantError(t, http.StatusBadRequest)
			}
			if q == "fresh" {
				wantKeys(t, "queues after bad batches", decode[[]string](t, s.get("/q")), nil)
				return
			}
			if st := s.stats(q); st.Length != 1 || st.Pushed != 1 {
				t.Errorf("want the queue unchanged, got %+v", st)
			}
			if k := s.push(q, "second"); k != q+":2" {
				t.Errorf("ids unchanged: want %s:2, got %s", q, k)
			}
		})
	}
}

func TestErrorsAreJSON(t *testing.T) {
	s := startServer(t, server.Config{})
	s.get("/no/such/route").wantError(t, http.StatusNotFound)
	s.do(http.MethodPatch, "/q/x", nil).wantError(t, http.StatusMethodNotAllowed)
	// A WebSocket route asked without the upgrade.
	s.get("/ws/x").wantError(t, http.StatusUpgradeRequired, "WebSocket")
	upgrade := []string{"Connection", "keep-alive, Upgrade", "Upgrade", "websocket"}
	s.get("/ws/x", append(upgrade, "Sec-WebSocket-Version", "8")...).wantError(t, http.StatusBadRequest, "version")
	s.get("/ws/x", append(upgrade, "Sec-WebSocket-Version", "13")...).wantError(t, http.StatusBadRequest, "Sec-WebSocket-Key")
}
