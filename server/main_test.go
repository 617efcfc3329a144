package server_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server"
)

// waitFor bounds every wait for a signal, so a bug fails the test instead of
// hanging it.
const waitFor = 5 * time.Second

// httpClient is every test's client; TestMain closes its idle connections
// before it counts goroutines. It does not follow redirects, so that tests
// see them.
var httpClient = &http.Client{
	Transport:     &http.Transport{},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// TestMain fails the package if goroutines started by the tests are still
// running once they are done (servers, consumers, readers), after a grace
// period for those that are ending.
func TestMain(m *testing.M) {
	flag.Parse()
	before := runtime.NumGoroutine()
	code := m.Run()
	httpClient.CloseIdleConnections()
	// Fuzzing starts a signal goroutine of its own that outlives the tests.
	fuzzing := flag.Lookup("test.fuzz") != nil && flag.Lookup("test.fuzz").Value.String() != ""
	if code == 0 && !fuzzing {
		if n := settledGoroutines(before, waitFor); n > before {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines before the tests, %d after\n", before, n)
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			code = 1
		}
	}
	os.Exit(code)
}

// settledGoroutines waits up to grace for the goroutine count to fall to
// want and returns the last count.
func settledGoroutines(want int, grace time.Duration) int {
	deadline := time.Now().Add(grace)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testServer is a running server and the token its requests carry.
type testServer struct {
	*server.Server
	t     *testing.T
	cfg   server.Config
	token string // sent as "Authorization: Bearer" unless empty
}

// startServer starts a server on a loopback port with cfg, a fresh data
// directory unless cfg names one, and a silent logger; it closes at the end
// of the test. Requests carry cfg.Token.
func startServer(t *testing.T, cfg server.Config) *testServer {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return &testServer{Server: srv, t: t, cfg: cfg, token: cfg.Token}
}

// restart closes the server and starts another on the same data directory.
func (s *testServer) restart() *testServer {
	s.t.Helper()
	if err := s.Close(); err != nil {
		s.t.Fatalf("close server: %v", err)
	}
	return startServer(s.t, s.cfg)
}

// as returns the same server with requests carrying token ("" for none).
func (s *testServer) as(token string) *testServer {
	c := *s
	c.token = token
	return &c
}

// response is a whole HTTP response.
type response struct {
	method, path string
	Status       int
	Header       http.Header
	Body         []byte
}

func (r response) String() string {
	return fmt.Sprintf("%s %s: %d %q", r.method, r.path, r.Status, truncate(string(r.Body), 300))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// do sends a request; header is a list of name, value pairs (a "Host"
// pair sets the request's Host).
func (s *testServer) do(method, path string, body io.Reader, header ...string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, body)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{method: method, path: path, Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (s *testServer) get(path string, header ...string) response {
	s.t.Helper()
	return s.do(http.MethodGet, path, nil, header...)
}

func (s *testServer) postForm(path string, form url.Values) response {
	s.t.Helper()
	return s.do(http.MethodPost, path, strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
}

// postJSON posts v as JSON; a string is sent as it is.
func (s *testServer) postJSON(path string, v any) response {
	s.t.Helper()
	return s.do(http.MethodPost, path, strings.NewReader(jsonText(s.t, v)), "Content-Type", "application/json")
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return string(b)
}

// want fails the test unless the response has status.
func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%v: want status %d, got %d", r, status, r.Status)
	}
	return r
}

// codeOfStatus is the error code each status is answered with.
var codeOfStatus = map[int]api.Code{
	400: api.CodeInvalid, 401: api.CodeUnauthorized, 403: api.CodeForbidden, 404: api.CodeNotFound,
	405: api.CodeMethod, 409: api.CodeConflict, 413: api.CodeTooLarge, 415: api.CodeUnsupported,
	426: api.CodeUpgradeRequired, 429: api.CodeTooMany, 500: api.CodeInternal, 503: api.CodeUnavailable,
}

// wantError fails the test unless the response is status with a JSON error
// body {"code": ..., "error": "..."} whose code is the status's and whose
// message contains each of subs.
func (r response) wantError(t *testing.T, status int, subs ...string) {
	t.Helper()
	r.want(t, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%v: want Content-Type application/json, got %q", r, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("%v: want a JSON error body, got %v", r, err)
	}
	msg, ok := body["error"].(string)
	code, _ := body["code"].(string)
	if !ok || msg == "" || len(body) != 2 || api.Code(code) != codeOfStatus[status] {
		t.Fatalf(`%v: want body {"code": %q, "error": "..."}, got %s`, r, codeOfStatus[status], r.Body)
	}
	for _, sub := range subs {
		if !strings.Contains(msg, sub) {
			t.Errorf("%v: want the error to mention %q, got %q", r, sub, msg)
		}
	}
}

// wantRestMQError fails the test unless the response is RestMQ's answer to
// an empty queue or an unknown command: 200 and {"error": msg}.
func (r response) wantRestMQError(t *testing.T, msg string) {
	t.Helper()
	r.want(t, http.StatusOK)
	if want := `{"error":` + strconv.Quote(msg) + "}\n"; string(r.Body) != want {
		t.Errorf("%v: want %q", r, want)
	}
}

// decode returns the response's JSON body as a T.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%v: decoding JSON into %T: %v", r, v, err)
	}
	return v
}

// message is RestMQ's shape of a message.
type message struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Count    int64  `json:"count"`
	Encoding string `json:"encoding"`
}

// queueStats is one queue's entry in /stats, with the names the spec gives.
type queueStats struct {
	Name      string `json:"name"`
	Length    int64  `json:"length"`
	InFlight  int64  `json:"in_flight"`
	Dead      int64  `json:"dead"`
	Status    string `json:"status"`
	Policy    string `json:"policy"`
	Pushed    int64  `json:"pushed"`
	Delivered int64  `json:"delivered"`
	Acked     int64  `json:"acked"`
	Consumers int    `json:"consumers"`
}

// push pushes value to queue as a raw body and returns its key.
func (s *testServer) push(queue, value string) string {
	s.t.Helper()
	r := s.do(http.MethodPost, "/q/"+queue, strings.NewReader(value), "Content-Type", "text/plain").want(s.t, http.StatusOK)
	key, ok := strings.CutSuffix(string(r.Body), "\r\n")
	if !ok {
		s.t.Fatalf("%v: want the key and \\r\\n, as RestMQ answers", r)
	}
	return key
}

// pushN pushes "value-1" … "value-n" to queue in one batch and returns the
// keys.
func (s *testServer) pushN(queue string, n int) []string {
	s.t.Helper()
	vals := make([]string, n)
	for i := range vals {
		vals[i] = "value-" + strconv.Itoa(i+1)
	}
	r := s.postJSON("/api/v1/queues/"+queue+"/messages", vals).want(s.t, http.StatusCreated)
	return decode[struct {
		Keys []string `json:"keys"`
	}](s.t, r).Keys
}

// pushCase is one way to push a message, and the value it must store.
type pushCase struct {
	name  string
	send  func() response
	value string
}

// runPushCases runs the cases in order on a queue that starts empty: the
// i-th must answer with the key queue:i and store its value.
func (s *testServer) runPushCases(t *testing.T, queue string, cases []pushCase) {
	t.Helper()
	for i, pc := range cases {
		t.Run(pc.name, func(t *testing.T) {
			s.wantPushed(t, pc.send(), fmt.Sprintf("%s:%d", queue, i+1), pc.value)
		})
	}
}

// wantPushed fails the test unless r answered a push with key as text and
// the queue's next message is key with value.
func (s *testServer) wantPushed(t *testing.T, r response, key, value string) {
	t.Helper()
	r.want(t, http.StatusOK)
	if string(r.Body) != key+"\r\n" {
		t.Errorf("%v: want key %q and \\r\\n as text", r, key)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("%v: want the key as text/plain, got %q", r, ct)
	}
	queue, _, _ := strings.Cut(key, ":")
	if m := s.take(queue); m.Key != key || m.Value != value || m.Count != 0 {
		t.Errorf("take: want {%s %q count 0}, got %+v", key, value, m)
	}
}

// take hard-gets the oldest message of queue, which must have one.
func (s *testServer) take(queue string) message {
	s.t.Helper()
	return decode[message](s.t, s.get("/q/"+queue).want(s.t, http.StatusOK))
}

// takeAll hard-gets messages until the queue answers 204 and returns their
// keys.
func (s *testServer) takeAll(queue string) []string {
	s.t.Helper()
	var keys []string
	for {
		r := s.get("/q/" + queue)
		if r.Status == http.StatusNoContent {
			return keys
		}
		keys = append(keys, decode[message](s.t, r.want(s.t, http.StatusOK)).Key)
	}
}

// stats returns one queue's statistics.
func (s *testServer) stats(queue string) queueStats {
	s.t.Helper()
	r := s.get("/stats/"+queue).want(s.t, http.StatusOK)
	st := decode[struct {
		Queue string `json:"queue"`
		Len   int64  `json:"len"`
		queueStats
	}](s.t, r)
	if st.Queue != queue || st.Len != st.Length {
		s.t.Fatalf(`%v: want RestMQ's "queue" %q and "len" equal to "length"`, r, queue)
	}
	return st.queueStats
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", waitFor, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStats polls the queue's statistics until cond holds.
func (s *testServer) waitStats(queue, what string, cond func(queueStats) bool) {
	s.t.Helper()
	eventually(s.t, queue+" "+what, func() bool { return cond(s.stats(queue)) })
}

// keysOf returns the messages' keys.
func keysOf(msgs []message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Key
	}
	return out
}

// wantKeys fails the test unless got is want, in order.
func wantKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: want keys %q, got %q", what, want, got)
	}
}
