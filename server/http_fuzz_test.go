package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
)

// fuzzMethods are the methods the HTTP fuzzer picks from.
var fuzzMethods = []string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete,
	http.MethodHead, http.MethodPatch, http.MethodOptions,
}

// Bounds of one fuzzed request.
const (
	fuzzStreamWait = 50 * time.Millisecond // how long a COMET stream may run
	fuzzHang       = 10 * time.Second      // a handler slower than this has hung
)

// FuzzHTTP sends arbitrary methods, paths, content types, headers ("Name:
// value" lines) and bodies to the handler of a real server (real store in a
// temporary directory): no request may get a 5xx, and every 4xx must carry a
// JSON {"error": "..."} body with a message.
func FuzzHTTP(f *testing.F) {
	seeds := []struct {
		method      uint8
		path, ctype string
		body        string
	}{
		{1, "/q/jobs", "text/plain", "hello"},
		{1, "/q/jobs?ttl=5", "application/x-www-form-urlencoded", "value=hi"},
		{1, "/q/jobs?ttl=-1", "", "x"},
		{1, "/q/jobs", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"value\"\r\n\r\nv\r\n--x--\r\n"},
		{0, "/q/jobs", "", ""},
		{0, "/q/bad%20name", "", ""},
		{3, "/q/jobs", "", ""},
		{0, "/q", "", ""},
		{0, "/?queue=jobs", "", ""},
		{1, "/", "application/x-www-form-urlencoded", "queue=jobs&msg=hi"},
		{1, "/", "application/x-www-form-urlencoded", "%zz"},
		{1, "/queue", "application/json", `{"cmd":"add","queue":"jobs","value":"v"}`},
		{1, "/queue", "application/json", `{"cmd":"del","key":"jobs:1"}`},
		{1, "/queue", "application/x-www-form-urlencoded", `body={"cmd":"take","queue":"jobs"}`},
		{1, "/api/v1/queues/jobs/messages", "application/json", `["a",{"value_b64":"aGk="},3]`},
		{1, "/api/v1/queues/jobs/messages", "application/x-ndjson", "\"a\"\n{\"value\":\"b\",\"ttl\":1}\n"},
		{1, "/api/v1/queues/jobs/lease", "application/json", `{"n":5,"visibility":30}`},
		{1, "/api/v1/queues/jobs/lease?n=abc", "", ""},
		{1, "/api/v1/queues/jobs/ack", "application/json", `{"lease":"1.1"}`},
		{1, "/api/v1/queues/jobs/nack", "application/x-www-form-urlencoded", "lease=1.1&delay=1&error=boom"},
		{1, "/api/v1/queues/jobs/extend", "application/json", `{"lease":"1.1","visibility":1e12}`},
		{1, "/p/jobs", "application/x-www-form-urlencoded", "policy=roundrobin"},
		{0, "/p/jobs", "", ""},
		{1, "/control/jobs", "application/x-www-form-urlencoded", "status=paused"},
		{0, "/stats/jobs", "", ""},
		{0, "/stats", "", ""},
		{1, "/pub/room", "application/json", `{"hello":1}`},
		{0, "/presence/room", "", ""},
		{2, "/kv/a/b%2Fc?ttl=1", "application/json", `{"x":[1,2]}`},
		{2, "/kv/raw", "application/octet-stream", "\x00\xff"},
		{0, "/kv/a/b%2Fc", "", ""},
		{0, "/kv/%zz", "", ""},
		{1, "/kv/mget", "application/json", `["a/b/c","raw","missing"]`},
		{1, "/kv/mset", "application/json", `{"a":1,"b":[true]}`},
		{0, "/healthz", "", ""},
		{0, "/metrics", "", ""},
		{0, "/nowhere", "", ""},
		{5, "/q/jobs", "", ""},
		{0, "/c/jobs", "", ""},
		{0, "/ws/bad%20name", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, []byte(s.body), "")
	}
	for _, hs := range []string{
		"Connection: Upgrade\nUpgrade: websocket",
		"Connection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
		"Connection: keep-alive, Upgrade\nUpgrade: WebSocket\nSec-WebSocket-Version: 12",
		"Accept: application/json",
		"Authorization: Bearer nope",
	} {
		f.Add(uint8(0), "/ws/jobs", "", []byte(nil), hs)
		f.Add(uint8(0), "/ws/pubsub/room", "", []byte(nil), hs)
	}
	h := startFuzzServer(f)
	f.Fuzz(func(t *testing.T, method uint8, path, ctype string, body []byte, headers string) {
		req, cancel, ok := fuzzRequest(fuzzMethods[int(method)%len(fuzzMethods)], path, ctype, body, headers)
		if !ok {
			return // not a request a client could send
		}
		defer cancel()
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); h.ServeHTTP(hijackRecorder{rec}, req) }()
		select {
		case <-done:
		case <-time.After(fuzzHang):
			t.Fatalf("%s %s: no answer after %v, want one", req.Method, path, fuzzHang)
		}
		checkFuzzResponse(t, req.Method+" "+path, rec)
	})
}

// startFuzzServer starts a server on a loopback port with its data in a
// temporary directory and returns its handler.
func startFuzzServer(f *testing.F) http.Handler {
	f.Helper()
	srv, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DataDir: f.TempDir(), Fsync: "never",
		MaxBody: 64 << 10, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatalf("server.Start: %v", err)
	}
	f.Cleanup(func() {
		if err := srv.Close(); err != nil {
			f.Errorf("server Close: %v", err)
		}
	})
	return srv.Echo()
}

// fuzzRequest builds the request; a COMET stream gets a short deadline since
// it only ends when its client leaves.
func fuzzRequest(method, path, ctype string, body []byte, headers string) (*http.Request, context.CancelFunc, bool) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if method == http.MethodGet && strings.HasPrefix(path, "/c/") {
		ctx, cancel = context.WithTimeout(ctx, fuzzStreamWait)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://127.0.0.1"+path, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, nil, false
	}
	req.RemoteAddr = "127.0.0.1:40000"
	for _, line := range strings.Split(headers, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok && name != "" {
			req.Header.Add(name, strings.TrimSpace(value))
		}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return req, cancel, true
}

// hijackRecorder lets a WebSocket handshake complete against a recorder: the
// hijacked connection's far end is closed at once, so the session ends at
// its first read or write.
type hijackRecorder struct{ *httptest.ResponseRecorder }

func (hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, client := net.Pipe()
	client.Close()
	return conn, bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn)), nil
}

// checkFuzzResponse fails on a 5xx, and on a 4xx whose body is not a JSON
// error with a message.
func checkFuzzResponse(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s: status %d (%q), want < 500", what, rec.Code, rec.Body.Bytes())
	}
	if rec.Code < 400 {
		return
	}
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil || *e.Error == "" {
		t.Fatalf("%s: status %d body %q (%v), want JSON {\"error\": \"<message>\"}", what, rec.Code, rec.Body.Bytes(), err)
	}
}
