package restmqcompat

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/servertest"
)

// waitFor bounds every wait, so a bug fails a test instead of hanging it.
const waitFor = 5 * time.Second

// formType is what curl -d, urllib2, requests and HTML forms send.
const formType = "application/x-www-form-urlencoded"

// client never follows redirects (the tests look at them) and keeps no
// connection between tests.
var client = &http.Client{
	Timeout:       waitFor,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableKeepAlives: true},
}

// srv is a running server for one test.
type srv struct {
	*server.Server
	t *testing.T
}

func start(t *testing.T, cfg server.Config) *srv {
	t.Helper()
	return &srv{Server: servertest.Start(t, cfg), t: t}
}

// reply is a whole response.
type reply struct {
	status int
	header http.Header
	body   string
}

// call sends one request as a client would: method, path (and query), the
// Content-Type header if not "", and body; header holds more header pairs.
func (s *srv) call(method, path, ctype, body string, header ...string) reply {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// form is curl -d name=value -d …: a urlencoded body.
func form(pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	return v.Encode()
}

// want fails the test unless the reply has status and exactly body.
func (r reply) want(t *testing.T, what string, status int, body string) reply {
	t.Helper()
	if r.status != status || r.body != body {
		t.Errorf("%s: want %d %q, got %d %q", what, status, body, r.status, r.body)
	}
	return r
}

// rawConn is a TCP connection to the server that speaks HTTP by hand, as
// the old clients did (twisted's downloadPage sends HTTP/1.0).
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

// dialRaw sends request (the request line and headers, without the blank
// line) and reads the response's status line and headers.
func (s *srv) dialRaw(request string) (*rawConn, http.Header) {
	s.t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr(), waitFor)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitFor))
	if _, err := io.WriteString(c, request+"\r\n\r\n"); err != nil {
		s.t.Fatal(err)
	}
	rc := &rawConn{Conn: c, r: bufio.NewReader(c)}
	status, err := rc.r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		s.t.Fatalf("%q: want 200, got %q (%v)", strings.SplitN(request, "\r\n", 2)[0], status, err)
	}
	h := http.Header{}
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading headers: %v", err)
		}
		if line == "\r\n" {
			return rc, h
		}
		k, v, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		h.Add(k, strings.TrimSpace(v))
	}
}

// chunk reads one chunk of a chunked body, as em-http's stream callback
// gets it.
func (c *rawConn) chunk(t *testing.T) string {
	t.Helper()
	size, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a chunk size: %v", err)
	}
	var n int
	if _, err := fmt.Sscanf(size, "%x", &n); err != nil {
		t.Fatalf("chunk size %q: %v", size, err)
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, b); err != nil {
		t.Fatalf("reading a chunk of %d bytes: %v", n, err)
	}
	return string(b[:n])
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitConsumers waits until queue has n live consumers.
func (s *srv) waitConsumers(queue string, n int) {
	s.t.Helper()
	eventually(s.t, fmt.Sprintf("%s has %d live consumers", queue, n), func() bool {
		return s.Broker().Consumers(queue) == n
	})
}
