package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// rawConn opens a TCP connection to the server and closes it at the end of
// the test; every read of it is bounded by waitFor.
func (s *testServer) rawConn() net.Conn {
	s.t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	return c
}

// wantServerEnds reads c until the server ends the connection, and fails
// the test if it is still open after waitFor. It returns what was read.
func wantServerEnds(t *testing.T, c net.Conn, what string) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the connection is still open after %s", what, waitFor)
	}
	return string(b)
}

// A client that sends part of its headers, or part of a body, and then
// nothing (slowloris) loses its connection; so does one that stops reading
// a response.
func TestHTTPTimeouts(t *testing.T) {
	const short = 200 * time.Millisecond
	s := startServer(t, server.Config{ReadHeaderTimeout: short, BodyIdleTimeout: short})
	t.Run("headers", func(t *testing.T) {
		c := s.rawConn()
		fmt.Fprintf(c, "GET /q HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
		wantServerEnds(t, c, "partial headers")
	})
	t.Run("body", func(t *testing.T) {
		c := s.rawConn()
		fmt.Fprintf(c, "POST /q/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
		if got := wantServerEnds(t, c, "partial body"); got != "" && !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Errorf("partial body: want a 400 or nothing, got %q", truncate(got, 200))
		}
		if st := s.stats("slow"); st.Length != 0 {
			t.Errorf("a message was pushed from a partial body: %+v", st)
		}
	})
	t.Run("a body that keeps coming", func(t *testing.T) {
		const idle = time.Second
		s := startServer(t, server.Config{BodyIdleTimeout: idle})
		c := s.rawConn()
		fmt.Fprintf(c, "POST /q/steady HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n")
		for i := range 12 { // over longer than the idle timeout, each byte well within it
			time.Sleep(idle / 10)
			fmt.Fprintf(c, "%d", i%10)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("steady body: %q, %v", line, err)
		}
	})
	w := startServer(t, server.Config{WriteTimeout: short, MaxBody: 32 << 20})
	t.Run("a client that does not read", func(t *testing.T) {
		s := w
		const size = 24 << 20 // more than the kernel's buffers hold
		s.do("PUT", "/kv/big", strings.NewReader(strings.Repeat("x", size)), "Content-Type", "application/octet-stream").want(t, http.StatusOK)
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		fmt.Fprintf(c, "GET /kv/big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		// The handler ends, its write failed at the deadline, while the
		// client reads nothing: /metrics counts a request once its handler
		// has returned, with the status its error gave.
		eventually(t, "the stalled GET /kv/big ends", func() bool {
			return strings.Contains(string(s.get("/metrics").Body), `_count{method="GET",route="/kv/*",status="500"} 1`)
		})
	})
	t.Run("live consumers idle past the timeouts", func(t *testing.T) {
		s := w
		comet := s.comet("idle")
		ws := s.ws("idle.ws", helloNoAck)
		s.waitConsumers("idle", 1)
		s.waitConsumers("idle.ws", 1)
		time.Sleep(3 * short) // longer than every timeout, with no traffic
		s.push("idle", "late")
		s.push("idle.ws", "late")
		if m := comet.next(t); m.Value != "late" {
			t.Errorf("COMET: %+v", m)
		}
		if m := ws.next(t); m.Value != "late" {
			t.Errorf("WebSocket: %+v", m)
		}
	})
}

// dialWorkerFrom opens a worker socket from the loopback address src; the
// socket and its client are closed at the end of the test.
func (s *testServer) dialWorkerFrom(src, token string) (*websocket.Conn, *http.Response, error) {
	s.t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}
	s.t.Cleanup(tr.CloseIdleConnections)
	opts := &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}
	if token != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/api/v1/ws/worker", opts)
	if err == nil {
		s.t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// Anonymous worker sockets are capped from one address and in all; the
// operator's own workers are not counted.
func TestAnonymousWorkerSocketCaps(t *testing.T) {
	s := startServer(t, server.Config{Token: testToken, MaxAnonWorkers: 3, MaxAnonWorkersPerAddr: 2})
	open := func(src, token string) *websocket.Conn {
		t.Helper()
		c, _, err := s.dialWorkerFrom(src, token)
		if err != nil {
			t.Fatalf("worker socket from %s: %v", src, err)
		}
		return c
	}
	refused := func(src string) {
		t.Helper()
		c, resp, err := s.dialWorkerFrom(src, "")
		if err == nil {
			c.CloseNow()
			t.Fatalf("worker socket from %s: opened past the cap", src)
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("worker socket from %s: want 429, got %v (%v)", src, resp, err)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	first := open("127.0.0.1", "")
	open("127.0.0.1", "")
	refused("127.0.0.1")
	open("127.0.0.2", "")
	refused("127.0.0.3")
	open("127.0.0.3", testToken) // trusted: not counted
	first.Close(websocket.StatusNormalClosure, "")
	eventually(t, "a closed socket frees its place", func() bool {
		c, _, err := s.dialWorkerFrom("127.0.0.1", "")
		if err == nil {
			c.CloseNow()
		}
		return err == nil
	})
}

// Before its HELLO, a worker socket can make the server buffer only a
// small frame: a large first frame closes it at once.
func TestWorkerReadLimitBeforeHello(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, _, err := s.dialWorkerFrom("127.0.0.1", "")
	if err != nil {
		t.Fatal(err)
	}
	// A 1 MiB frame, streamed: the server cuts it off long before its end.
	w, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for range 16 {
		if _, err := w.Write(chunk); err != nil {
			break // the server closed the connection
		}
	}
	_, _, err = c.Read(ctx)
	if st := websocket.CloseStatus(err); st != websocket.StatusMessageTooBig {
		t.Errorf("a 1 MiB first frame: want close %v, got %v", websocket.StatusMessageTooBig, err)
	}

	// After its HELLO, a worker sends frames as large as results.
	c2, _, err := s.dialWorkerFrom("127.0.0.1", "")
	if err != nil {
		t.Fatal(err)
	}
	hello := wp.Encode(&wp.Hello{Protocol: wp.ProtocolVersion, Kind: wp.KindNative, Slots: 1, UserAgent: "test"})
	if err := c2.Write(ctx, websocket.MessageBinary, hello); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c2.Read(ctx); err != nil { // WELCOME
		t.Fatal(err)
	}
	hb := wp.Encode(&wp.Heartbeat{})
	big := append(hb, make([]byte, 1<<20)...)
	if err := c2.Write(ctx, websocket.MessageBinary, big); err != nil {
		t.Fatal(err)
	}
	_, _, err = c2.Read(ctx)
	if st := websocket.CloseStatus(err); st == websocket.StatusMessageTooBig {
		t.Errorf("a 1 MiB frame after HELLO: closed as too big")
	}
}

// helloWorker says HELLO on a worker socket and reads the WELCOME.
func helloWorker(t *testing.T, c *websocket.Conn, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	hello := wp.Encode(&wp.Hello{Protocol: wp.ProtocolVersion, Kind: wp.KindNative, Slots: 1, UserAgent: "test", Name: name})
	if err := c.Write(ctx, websocket.MessageBinary, hello); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatalf("welcome: %v", err)
	}
}

// dialWorkerXFF opens a worker socket that claims, in X-Forwarded-For, to
// come from xff.
func (s *testServer) dialWorkerXFF(xff string) (*websocket.Conn, *http.Response, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/api/v1/ws/worker", &websocket.DialOptions{
		HTTPClient: httpClient, HTTPHeader: http.Header{"X-Forwarded-For": {xff}},
	})
	if err == nil {
		s.t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// workerAddrs returns the connected workers' addresses by name.
func (s *testServer) workerAddrs() map[string]string {
	s.t.Helper()
	ws := decode[struct{ Workers []api.WorkerInfo }](s.t, s.get("/api/v1/workers").want(s.t, http.StatusOK)).Workers
	out := map[string]string{}
	for _, w := range ws {
		out[w.Name] = w.RemoteAddr
	}
	return out
}

// X-Forwarded-For names a client only when a trusted proxy sends it: a
// worker cannot claim another address to pass as another network, or to
// get around the cap on sockets from one address.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	s := startServer(t, server.Config{MaxAnonWorkersPerAddr: 1})
	c, _, err := s.dialWorkerXFF("10.9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	helloWorker(t, c, "spoofer")
	if got := s.workerAddrs()["spoofer"]; got != "127.0.0.1" {
		t.Errorf("worker that claims 10.9.9.9: known as %q, want its own 127.0.0.1", got)
	}
	if c, _, err := s.dialWorkerXFF("10.8.8.8"); err == nil {
		c.CloseNow()
		t.Errorf("a second socket from 127.0.0.1 that claims 10.8.8.8 passed the cap of 1 per address")
	}

	p := startServer(t, server.Config{TrustedProxies: []string{"127.0.0.0/8"}})
	c, _, err = p.dialWorkerXFF("203.0.113.7, 10.9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	helloWorker(t, c, "proxied")
	// The nearest address the proxies do not vouch for is the client's; the
	// rest of the header is the client's own claim.
	if got := p.workerAddrs()["proxied"]; got != "10.9.9.9" {
		t.Errorf("worker behind a trusted proxy: known as %q, want 10.9.9.9", got)
	}
}

// A module whose start loops forever is refused at the compile deadline,
// with a 400 that says so; the server then compiles the next one.
func TestUploadedModuleStartDeadline(t *testing.T) {
	s := startServer(t, server.Config{CompileTimeout: 500 * time.Millisecond})
	loop := wasmtest.Module(t, "github.com/tabreduce/tabreduce/wasm/runner/testdata/initloop")
	start := time.Now()
	s.do("POST", "/api/v1/modules", bytes.NewReader(loop), "Content-Type", "application/wasm").wantError(t, http.StatusBadRequest, "_initialize")
	if d := time.Since(start); d > 30*time.Second { // a task's deadline is minutes
		t.Errorf("the upload took %v", d)
	}
	s.upload(wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/sum"))
}
