package resp_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/buntstore"
	"github.com/tabreduce/tabreduce/server/kv"
	"github.com/tabreduce/tabreduce/server/pubsub"
	"github.com/tabreduce/tabreduce/server/resp"
)

const waitFor = 5 * time.Second

// TestMain fails the package if the tests leave goroutines running.
func TestMain(m *testing.M) {
	flag.Parse()
	before := runtime.NumGoroutine()
	code := m.Run()
	// Fuzzing starts a signal goroutine of its own that outlives the tests.
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	deadline := time.Now().Add(waitFor)
	for code == 0 && !fuzzing && runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines before the tests, %d after\n", before, runtime.NumGoroutine())
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			code = 1
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	os.Exit(code)
}

// serve starts a server with lim over a real store, broker and hub.
func serve(t testing.TB, lim resp.Limits) *resp.Server {
	t.Helper()
	st, err := buntstore.Open(t.TempDir(), buntstore.Options{Fsync: buntstore.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	b, err := broker.New(context.Background(), st, broker.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	hub := pubsub.New(pubsub.Config{})
	s, err := resp.Listen("127.0.0.1:0", resp.Config{Limits: lim, Logger: log}, resp.Deps{Broker: b, KV: kv.New(st), Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		b.Close()
		hub.Close()
		st.Close()
	})
	return s
}

type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, s *resp.Server) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(waitFor))
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// cmd sends an inline command and returns the first line of its reply.
func (c *client) cmd(line string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	return c.line()
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// closed waits for the server to close the connection and returns what
// it sent before.
func (c *client) closed() string {
	c.t.Helper()
	rest, err := io.ReadAll(c.br)
	if err != nil && !isNetErr(err) {
		c.t.Fatalf("want the connection closed, got %v", err)
	}
	return string(rest)
}

func isNetErr(err error) bool {
	_, ok := err.(net.Error)
	return ok
}

func TestClientsPerAddress(t *testing.T) {
	s := serve(t, resp.Limits{MaxClientsPerAddr: 2})
	a, b := dial(t, s), dial(t, s)
	a.cmd("PING")
	b.cmd("PING")
	c := dial(t, s)
	if got := c.closed(); !strings.HasPrefix(got, "-ERR max number of clients from one address") {
		t.Errorf("third connection got %q, want refused", got)
	}
	a.nc.Close()
	deadline := time.Now().Add(waitFor)
	for !pings(s) { // the slot frees once the server has seen a go
		if time.Now().After(deadline) {
			t.Fatal("no connection admitted after one of two closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pings reports whether a new connection answers PING.
func pings(s *resp.Server) bool {
	nc, err := net.DialTimeout("tcp", s.Addr(), waitFor)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(waitFor))
	if _, err := io.WriteString(nc, "PING\r\n"); err != nil {
		return false
	}
	l, _ := bufio.NewReader(nc).ReadString('\n')
	return l == "+PONG\r\n"
}

func TestClientsInTotal(t *testing.T) {
	s := serve(t, resp.Limits{MaxClients: 1})
	dial(t, s).cmd("PING")
	if got := dial(t, s).closed(); !strings.HasPrefix(got, "-ERR max number of clients reached") {
		t.Errorf("second connection got %q, want refused", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := serve(t, resp.Limits{IdleTimeout: 100 * time.Millisecond})
	c := dial(t, s)
	start := time.Now() // before the PING: the server's idle clock starts once it has read it
	c.cmd("PING")
	c.closed()
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("closed after %v, want the idle timeout of 100ms first", d)
	}
}

// A request begun and not finished is cut after ReadTimeout, however long
// the idle timeout.
func TestReadTimeout(t *testing.T) {
	s := serve(t, resp.Limits{ReadTimeout: 100 * time.Millisecond})
	c := dial(t, s)
	io.WriteString(c.nc, "*2\r\n$3\r\nGET\r\n")
	c.closed()
}

// A client that sends requests but never reads its replies is closed after
// WriteTimeout; the server goes on serving others.
func TestWriteTimeout(t *testing.T) {
	s := serve(t, resp.Limits{WriteTimeout: 200 * time.Millisecond})
	c := dial(t, s)
	big := strings.Repeat("v", 1<<20)
	io.WriteString(c.nc, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n"+big+"\r\n")
	if got := c.line(); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	go func() {
		for range 200 {
			if _, err := io.WriteString(c.nc, "GET big\r\n"); err != nil {
				return
			}
		}
	}()
	other := dial(t, s)
	deadline := time.Now().Add(waitFor)
	for {
		other.cmd("INFO clients")
		info := other.line()
		for !strings.HasPrefix(info, "connected_clients:") {
			info = other.line()
		}
		if info == "connected_clients:1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client that does not read is still connected after %v (%s)", waitFor, info)
		}
		other.br.Discard(other.br.Buffered())
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMaxBlock(t *testing.T) {
	s := serve(t, resp.Limits{MaxBlock: 100 * time.Millisecond})
	c := dial(t, s)
	if got := c.cmd("BLPOP q 0"); got != "*-1" {
		t.Errorf("BLPOP q 0 with MaxBlock 100ms = %q, want a null reply after it", got)
	}
}

func TestMaxSubscriptions(t *testing.T) {
	s := serve(t, resp.Limits{MaxSubscriptions: 2})
	c := dial(t, s)
	io.WriteString(c.nc, "SUBSCRIBE a b c\r\n")
	for range 2 * 6 { // *3, $9, subscribe, $1, the name, :n
		c.line()
	}
	if got := c.line(); !strings.Contains(got, "at most 2 channels") {
		t.Errorf("third subscription = %q, want refused", got)
	}
}

// Pipelined SETs run as one transaction, with the outcome and replies they
// would have had one by one; nothing waits for a request not yet whole.
func TestPipelinedSets(t *testing.T) {
	s := serve(t, resp.Limits{})
	c := dial(t, s)
	set := func(k, v string) string {
		return fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	io.WriteString(c.nc, set("a", "1")+set("a", "2")+set("b", "x")+"GET a\r\n"+set("", "bad")+set("c", "3")+
		"*3\r\n$3\r\nSET\r\n^1\r\nd\r\n^2\r\né\r\n"+set("e", "5")+"GET d\r\n")
	want := []string{"+OK", "+OK", "+OK", "$1", "2", "-ERR invalid: invalid argument: key must be 1-512 bytes of UTF-8", "+OK", "+OK", "+OK", "^2", "é"}
	for _, w := range want {
		if got := c.line(); got != w {
			t.Fatalf("reply line %q, want %q", got, w)
		}
	}
	for k, v := range map[string]string{"a": "2", "b": "x", "c": "3", "e": "5"} {
		c.cmd("GET " + k)
		if got := c.line(); got != v {
			t.Errorf("GET %s = %q, want %q", k, got, v)
		}
	}
	// A SET whose rest has not arrived holds up nothing before it.
	tail := set("z", "26")
	io.WriteString(c.nc, set("y", "25")+tail[:10])
	if got := c.line(); got != "+OK" {
		t.Fatalf("reply to the whole SET = %q", got)
	}
	io.WriteString(c.nc, tail[10:])
	if got := c.line(); got != "+OK" {
		t.Fatalf("reply to the SET completed later = %q", got)
	}
}

// Pipelined pushes to one queue run as one push, each answered with the
// queue's length after its own messages, in order.
func TestPipelinedPushes(t *testing.T) {
	s := serve(t, resp.Limits{})
	c := dial(t, s)
	big := strings.Repeat("x", 9<<20)
	io.WriteString(c.nc, "RPUSH q a\r\nRPUSH q b c\r\nLPUSH q d\r\nRPUSH other x\r\nRPUSH q e\r\n"+
		fmt.Sprintf("*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$%d\r\n%s\r\n", len(big), big)+"RPUSH q f\r\nRPUSH a/b g\r\nRPUSH q h\r\n")
	want := []string{":1", ":3", ":4", ":1", ":5"}
	for _, w := range want {
		if got := c.line(); got != w {
			t.Fatalf("reply %q, want %q", got, w)
		}
	}
	if got := c.line(); !strings.HasPrefix(got, "-ERR Protocol error: bulk of") {
		t.Fatalf("reply to the push over the limit = %q, want a protocol error", got)
	}
	// A message over the broker's limit ends the batch and is refused alone.
	s2 := serve(t, resp.Limits{MaxBulk: 16 << 20})
	c = dial(t, s2)
	io.WriteString(c.nc, "RPUSH q a\r\n"+fmt.Sprintf("*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$%d\r\n%s\r\n", len(big), big)+
		"RPUSH q b\r\nRPUSH a/b x\r\nRPUSH q c\r\n")
	for _, w := range []string{":1", "-ERR invalid: invalid argument: message 0 is 9437184 bytes, the limit is 8388608", ":2",
		"-ERR invalid: invalid argument: queue name \"a/b\" may not contain '/'", ":3"} {
		if got := c.line(); got != w {
			t.Fatalf("reply %q, want %q", got, w)
		}
	}
	for _, w := range []string{"a", "b", "c"} {
		c.cmd("LPOP q")
		if got := c.line(); got != w {
			t.Errorf("LPOP = %q, want %q", got, w)
		}
	}
}

// Pipelined pops of one queue take their messages in one store operation,
// oldest first, each pop answered in order; the pops past the last message
// answer nil, and a pop of another queue ends the batch.
func TestPipelinedPops(t *testing.T) {
	s := serve(t, resp.Limits{})
	c := dial(t, s)
	if got := c.cmd("RPUSH q a b c"); got != ":3" {
		t.Fatalf("RPUSH = %q", got)
	}
	c.cmd("RPUSH other x")
	io.WriteString(c.nc, "LPOP q\r\nRPOP q\r\nLPOP other\r\nLPOP q\r\nLPOP q\r\nRPOP q\r\nLPOP a/b\r\nLPOP q\r\n")
	want := []string{"$1", "a", "$1", "b", "$1", "x", "$1", "c", "$-1", "$-1",
		"-ERR invalid: invalid argument: queue name \"a/b\" may not contain '/'", "$-1"}
	for _, w := range want {
		if got := c.line(); got != w {
			t.Fatalf("reply line %q, want %q", got, w)
		}
	}
	c.cmd("RPUSH q d")
	if got := c.cmd("LPOP q") + " " + c.line(); got != "$1 d" {
		t.Errorf("LPOP after the batch = %q, want the message pushed since", got)
	}
}
