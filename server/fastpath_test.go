package server_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
)

// fastCounts reads the fast path's counters from /metrics: requests it
// answered, connections it handed to net/http. It asks on a connection of
// its own, which the fast path hands to net/http: each call counts one.
func (s *testServer) fastCounts() (answered, handed int) {
	s.t.Helper()
	req := "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	if s.token != "" {
		req += "Authorization: Bearer " + s.token + "\r\n"
	}
	r := s.rawExchange(req+"\r\n", 1)[0]
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /metrics: %d %s", r.StatusCode, b)
	}
	body := string(b)
	read := func(name string) int {
		m := regexp.MustCompile(`(?m)^` + name + ` (\d+)`).FindStringSubmatch(body)
		if m == nil {
			s.t.Fatalf("/metrics has no %s", name)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return read("tabreduce_http_fast_requests_total"), read("tabreduce_http_fast_handoffs_total")
}

// rawExchange sends raw on a new connection and reads n responses.
func (s *testServer) rawExchange(raw string, n int) []*http.Response {
	s.t.Helper()
	c := s.rawConn()
	if _, err := io.WriteString(c, raw); err != nil {
		s.t.Fatal(err)
	}
	var req *http.Request // a HEAD's answer has no body to read
	if method, _, _ := strings.Cut(raw, " "); method == http.MethodHead {
		req = &http.Request{Method: method}
	}
	return readResponsesTo(s.t, bufio.NewReader(c), n, req)
}

func readResponses(t *testing.T, br *bufio.Reader, n int) []*http.Response {
	t.Helper()
	return readResponsesTo(t, br, n, nil)
}

func readResponsesTo(t *testing.T, br *bufio.Reader, n int, req *http.Request) []*http.Response {
	t.Helper()
	var out []*http.Response
	for range n {
		r, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response %d of %d: %v", len(out)+1, n, err)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		r.ContentLength = int64(len(b))
		out = append(out, r)
	}
	return out
}

// dump is a response as the client sees it, but for the headers that
// differ from one answer to the next (Date, X-Request-Id).
func dump(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\n", r.Status)
	h := r.Header.Clone()
	h.Del("Date")
	h.Del("X-Request-Id")
	_ = h.Write(&sb)
	fmt.Fprintf(&sb, "\n%q", b)
	return sb.String()
}

// The fast path answers RestMQ's push and hard get exactly as Echo's routes
// do: each request is sent as it is (the fast path takes it) and with a
// header the fast path does not know (net/http answers it), to two queues
// in the same state, and the answers must match but for Date and
// X-Request-Id.
func TestFastPathAnswersAsEcho(t *testing.T) {
	s := startServer(t, server.Config{Token: "tok", PublicRead: []string{"open*"}})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:tok"))
	long := strings.Repeat("n", 128)
	cases := []struct {
		name, queue, req string
		setup            func(queue string)
	}{
		{name: "push", queue: "push", req: "POST /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1:1\r\nAuthorization: Bearer tok\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello"},
		{name: "push, no type, Basic", queue: "basic", req: "POST /q/{Q} HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + basic + "\r\nContent-Length: 3\r\n\r\nabc"},
		{name: "push, JSON answer", queue: "json", req: "POST /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\nAccept: text/html, application/json\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "push, empty", queue: "empty", req: "POST /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\nContent-Length: 0\r\n\r\n"},
		{name: "push, 128-byte name, client's headers", queue: long[:126], req: "POST /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\nAuthorization: Bearer tok\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\n\xff\xfe\x00"},
		{name: "push, given request id", queue: "rid", req: "POST /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: mine-1\r\nAuthorization: Bearer tok\r\nContent-Length: 1\r\n\r\nx"},
		{name: "hard get", queue: "get", setup: func(q string) { s.push(q, "a message") },
			req: "GET /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n\r\n"},
		{name: "hard get, binary", queue: "getbin", setup: func(q string) { s.push(q, "\xff\x00") },
			req: "GET /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\nContent-Length: 0\r\n\r\n"},
		{name: "hard get, empty queue", queue: "none", req: "GET /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n\r\n"},
		{name: "hard get, paused", queue: "paused", setup: func(q string) {
			s.push(q, "kept")
			s.postForm("/control/"+q, url.Values{"status": {"stop"}}).want(t, http.StatusOK)
		}, req: "GET /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n\r\n"},
		{name: "hard get, public read", queue: "open-q", setup: func(q string) { s.push(q, "for all") },
			req: "GET /q/{Q} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]string
			for i, via := range []string{"fast", "echo"} {
				q := tc.queue + strconv.Itoa(i) // same length on both
				if tc.setup != nil {
					tc.setup(q)
				}
				req := strings.Replace(tc.req, "{Q}", q, 1)
				if via == "echo" { // a header the fast path leaves to net/http
					req = strings.Replace(req, "\r\n", "\r\nX-Via: echo\r\n", 1)
				}
				answered, handed := s.fastCounts()
				r := s.rawExchange(req, 1)[0]
				got[i] = strings.ReplaceAll(dump(r), q, "{Q}")
				// fastCounts' own GET /metrics is one handoff.
				a2, h2 := s.fastCounts()
				if want, got := map[string][2]int{"fast": {1, 0}, "echo": {0, 1}}[via], [2]int{a2 - answered, h2 - handed - 1}; want != got {
					t.Errorf("%s: fast path answered %d and handed %d connections, want %v", via, got[0], got[1], want)
				}
				if strings.Contains(req, "X-Request-Id: mine-1") && r.Header.Get("X-Request-Id") != "mine-1" {
					t.Errorf("%s: X-Request-Id %q, want the client's", via, r.Header.Get("X-Request-Id"))
				}
				if id := r.Header.Get("X-Request-Id"); id == "" {
					t.Errorf("%s: no X-Request-Id", via)
				}
			}
			if got[0] != got[1] {
				t.Errorf("the fast path's answer differs from Echo's:\nfast:\n%s\necho:\n%s", got[0], got[1])
			}
		})
	}
}

// Requests the fast path must not take go to net/http and get its answers:
// refusals, forms, browsers, other methods and forms of the route.
func TestFastPathLeavesTheRestToEcho(t *testing.T) {
	s := startServer(t, server.Config{Token: "tok", AllowHosts: []string{"ok.example"}, MaxBody: 64})
	auth := "Authorization: Bearer tok\r\n"
	cases := []struct {
		name, req string
		status    int
		body      string // a substring of the answer's body
	}{
		{"no token", "POST /q/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\nx", 401, "needs Authorization"},
		{"wrong token", "GET /q/a HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer nope\r\n\r\n", 401, "needs Authorization"},
		{"host not allowed", "POST /q/a HTTP/1.1\r\nHost: evil.example\r\n" + auth + "Content-Length: 1\r\n\r\nx", 403, "refused"},
		{"too large", "POST /q/a HTTP/1.1\r\nHost: ok.example\r\n" + auth + "Content-Length: 65\r\n\r\n" + strings.Repeat("x", 65), 413, "too_large"},
		{"a form", "POST /q/form HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=v", 200, "form:1"},
		{"a query", "POST /q/ttl?ttl=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "Content-Length: 1\r\n\r\nx", 200, "ttl:1"},
		{"a cross-site page", "POST /q/a HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "Origin: http://evil.example\r\nContent-Length: 1\r\n\r\nx", 403, "refused"},
		{"a percent-encoded name", "POST /q/a%2Fb HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "Content-Length: 1\r\n\r\nx", 400, "may not contain"},
		{"HTTP/1.0", "POST /q/old HTTP/1.0\r\nHost: 127.0.0.1\r\n" + auth + "Content-Length: 1\r\n\r\nx", 200, "old:1"},
		{"chunked", "POST /q/chunked HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 200, "chunked:1"},
		{"HEAD takes nothing", "HEAD /q/form HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "\r\n", 200, ""},
		{"repeated header", "POST /q/a HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n" + auth + "Content-Length: 1\r\n\r\nx", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			answered, handed := s.fastCounts()
			r := s.rawExchange(tc.req, 1)[0]
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
				t.Errorf("%d %q, want %d with %q", r.StatusCode, b, tc.status, tc.body)
			}
			if a2, h2 := s.fastCounts(); a2 != answered || h2 != handed+2 {
				t.Errorf("fast path answered %d and handed %d connections, want 0 and 1", a2-answered, h2-handed-1)
			}
		})
	}
	if st := s.stats("form"); st.Length != 1 {
		t.Errorf("HEAD /q/form took a message: %+v", st)
	}
}

// A connection moves from the fast path to net/http at its first request
// that the fast path does not take, with every byte it had sent, and stays
// there; pipelined requests are answered in order.
func TestFastPathHandOffMidConnection(t *testing.T) {
	s := startServer(t, server.Config{})
	push := func(q, v string) string {
		return fmt.Sprintf("POST /q/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s", q, len(v), v)
	}
	get := func(q string) string { return "GET /q/" + q + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" }
	c := s.rawConn()
	br := bufio.NewReader(c)
	// One at a time, then all in one write.
	io.WriteString(c, push("mid", "one"))
	first := readResponses(t, br, 1)[0]
	io.WriteString(c, push("mid", "two")+get("mid")+"GET /stats/mid HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"+push("mid", "three")+get("mid")+get("mid")+get("mid"))
	rs := append([]*http.Response{first}, readResponses(t, br, 7)...)
	var bodies []string
	for _, r := range rs {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, fmt.Sprintf("%d %s", r.StatusCode, strings.TrimSpace(string(b))))
	}
	want := []string{
		"200 mid:1",
		"200 mid:2",
		`200 {"key":"mid:1","value":"one","count":0}`,
		"200 stats",
		"200 mid:3",
		`200 {"key":"mid:2","value":"two","count":0}`,
		`200 {"key":"mid:3","value":"three","count":0}`,
		"204 ",
	}
	for i := range want {
		if i == 3 {
			if !strings.Contains(bodies[i], `"queue":"mid"`) {
				t.Errorf("answer %d: %q, want mid's stats", i+1, bodies[i])
			}
			continue
		}
		if bodies[i] != want[i] {
			t.Errorf("answer %d: %q, want %q", i+1, bodies[i], want[i])
		}
	}
}

// A fast connection that stops in the middle of a request is dropped after
// ReadHeaderTimeout (headers) or BodyIdleTimeout (body), as net/http's are,
// and nothing is pushed.
func TestFastPathTimeouts(t *testing.T) {
	const short = 200 * time.Millisecond
	s := startServer(t, server.Config{ReadHeaderTimeout: short, BodyIdleTimeout: short})
	for _, part := range []string{
		"POST /q/cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le",
		"POST /q/cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n01234",
	} {
		c := s.rawConn()
		io.WriteString(c, part)
		start := time.Now()
		if got := wantServerEnds(t, c, part); got != "" {
			t.Errorf("%q: answered %q, want the connection closed", part, got)
		}
		if d := time.Since(start); d < short/2 {
			t.Errorf("%q: closed after %s, before the timeout", part, d)
		}
	}
	// A kept-alive connection that sends whole requests more slowly than
	// the header timeout is not dropped: it waits for each as a new one.
	c := s.rawConn()
	br := bufio.NewReader(c)
	for range 3 {
		io.WriteString(c, "POST /q/cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\nx")
		if r := readResponses(t, br, 1)[0]; r.StatusCode != http.StatusOK {
			t.Fatalf("status %d", r.StatusCode)
		}
		time.Sleep(2 * short)
	}
	if st := s.stats("cut"); st.Length != 3 {
		t.Errorf("queue cut holds %d messages, want the 3 whole pushes", st.Length)
	}
}

// Close ends the fast path's connections: one that has never sent a
// request, one waiting between requests, and one in the middle of one.
func TestFastPathClose(t *testing.T) {
	s := startServer(t, server.Config{ShutdownTimeout: 2 * time.Second})
	silent := s.rawConn()
	kept := s.rawConn()
	io.WriteString(kept, "POST /q/c HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\nx")
	readResponses(t, bufio.NewReader(kept), 1)
	half := s.rawConn()
	io.WriteString(half, "POST /q/c HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Len")
	time.Sleep(50 * time.Millisecond) // let the server read it
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Close did not return")
	}
	for name, c := range map[string]net.Conn{"silent": silent, "kept-alive": kept, "half-sent": half} {
		wantServerEnds(t, c, name)
	}
}
