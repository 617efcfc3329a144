package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

// kvPut stores a JSON value (or raw bytes with ctype application/octet-stream).
func (s *testServer) kvPut(path, body, ctype string) response {
	s.t.Helper()
	return s.do(http.MethodPut, "/kv/"+path, strings.NewReader(body), "Content-Type", ctype)
}

func TestKVJSONValues(t *testing.T) {
	s := startServer(t, server.Config{})
	tests := []struct{ key, value string }{
		{"str", `"hello"`},
		{"num", `42.5`},
		{"null", `null`},
		{"nested", `{"a":[1,{"b":null}],"c":"d"}`},
		{"with/slashes/in/it", `true`},
		{"percent%sign", `"odd key"`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			s.kvPut(escapeKey(tt.key), tt.value, "application/json").want(t, http.StatusOK)
			r := s.get("/kv/"+escapeKey(tt.key)).want(t, http.StatusOK)
			if got := strings.TrimSpace(string(r.Body)); got != tt.value {
				t.Errorf("want %s, got %s", tt.value, got)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("want Content-Type application/json, got %q", ct)
			}
		})
	}
}

// escapeKey escapes what a key may hold that a URL path may not, keeping '/'.
func escapeKey(k string) string { return strings.ReplaceAll(k, "%", "%25") }

func TestKVRawBytes(t *testing.T) {
	s := startServer(t, server.Config{})
	raw := []byte{0, 1, 0xff, 0xfe, '\n', '{'}
	s.do(http.MethodPut, "/kv/blob", bytes.NewReader(raw), "Content-Type", "application/octet-stream").want(t, http.StatusOK)
	r := s.get("/kv/blob").want(t, http.StatusOK)
	if !bytes.Equal(r.Body, raw) {
		t.Errorf("want %x byte for byte, got %x", raw, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("want Content-Type application/octet-stream, got %q", ct)
	}
	s.kvPut("text", "not json", "application/octet-stream").want(t, http.StatusOK)
	got := s.postJSON("/kv/mget", []string{"text", "blob"}).want(t, http.StatusOK)
	// Raw values are bytes: mget shows them in the API's byte encoding.
	if b := string(got.Body); b != `[{"value_b64":"bm90IGpzb24="},{"value_b64":"AAH//gp7"}]` {
		t.Errorf(`mget of raw values: want [{"value_b64":"bm90IGpzb24="},{"value_b64":"AAH//gp7"}], got %s`, b)
	}
}

func TestKVDelete(t *testing.T) {
	s := startServer(t, server.Config{})
	s.kvPut("a/b", `1`, "application/json").want(t, http.StatusOK)
	s.do(http.MethodDelete, "/kv/a/b", nil).want(t, http.StatusOK)
	s.get("/kv/a/b").wantError(t, http.StatusNotFound)
	s.do(http.MethodDelete, "/kv/a/b", nil).wantError(t, http.StatusNotFound)
}

func TestKVTTL(t *testing.T) {
	s := startServer(t, server.Config{})
	s.kvPut("short?ttl=0.2", `"soon gone"`, "application/json").want(t, http.StatusOK)
	s.kvPut("long?ttl=3600", `"stays"`, "application/json").want(t, http.StatusOK)
	s.get("/kv/short").want(t, http.StatusOK)
	eventually(t, "the key expires", func() bool { return s.get("/kv/short").Status == http.StatusNotFound })
	s.get("/kv/long").want(t, http.StatusOK)
	s.kvPut("bad?ttl=-1", `1`, "application/json").wantError(t, http.StatusBadRequest, "ttl")
	s.kvPut("bad?ttl=x", `1`, "application/json").wantError(t, http.StatusBadRequest, "ttl")
}

func TestKVMSetMGet(t *testing.T) {
	s := startServer(t, server.Config{})
	s.postJSON("/kv/mset", `{"a":1,"b":[1,{"c":null}],"d/e":"f"}`).want(t, http.StatusOK)
	r := s.postJSON("/kv/mget", []string{"a", "missing", "b", "d/e"}).want(t, http.StatusOK)
	if got, want := strings.TrimSpace(string(r.Body)), `[1,null,[1,{"c":null}],"f"]`; got != want {
		t.Errorf("mget: want %s, got %s", want, got)
	}
	for _, path := range []string{"/kv/d/e", "/kv/d%2Fe"} {
		if got := strings.TrimSpace(string(s.get(path).Body)); got != `"f"` {
			t.Errorf(`GET %s: want "f", got %s`, path, got)
		}
	}
}

func TestKVMSetIsOneTransaction(t *testing.T) {
	s := startServer(t, server.Config{})
	s.postJSON("/kv/mset", `{"good":1,"":2}`).wantError(t, http.StatusBadRequest, "key")
	s.postJSON("/kv/mset", `{"good":1,"bad":}`).wantError(t, http.StatusBadRequest, "malformed")
	s.get("/kv/good").wantError(t, http.StatusNotFound)
}

func TestKVBadInput(t *testing.T) {
	s := startServer(t, server.Config{})
	s.kvPut("k", "not json", "application/json").wantError(t, http.StatusBadRequest, "JSON")
	s.kvPut("k", "not json", "").wantError(t, http.StatusBadRequest, "JSON")
	s.postJSON("/kv/mget", `{"a":1}`).wantError(t, http.StatusBadRequest, "malformed")
	s.postJSON("/kv/mget", []string{""}).wantError(t, http.StatusBadRequest, "key")
	s.postJSON("/kv/mset", `{}`).wantError(t, http.StatusBadRequest)
	s.get("/kv/"+strings.Repeat("k", 513)).wantError(t, http.StatusBadRequest, "key")
}
