package main

import (
	"bufio"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The Redis-protocol tests run the real binary with --redis-addr and drive
// it with Debian's redis-cli, one process per command, as a shell user
// would.

var redisRE = regexp.MustCompile(`redis protocol on 127\.0\.0\.1:(\d+)`)

// startRedisBroker starts tabreduce serve with the Redis protocol on a free
// port and returns it with that port.
func startRedisBroker(t *testing.T, bin, dir string, extra ...string) (*proc, string) {
	t.Helper()
	p := startBroker(t, bin, dir, "always", append([]string{"--redis-addr", "127.0.0.1:0"}, extra...)...)
	return p, p.waitFor(t, redisRE, "redis protocol on")[1]
}

func redisCLI(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed: run `make redis` (apt-get install redis-tools) to run the Redis-protocol tests")
	}
	return path
}

// cli runs redis-cli with args against port and returns its output,
// replies printed typed (--no-raw): "OK", "\"v\"", "(integer) 1", "(nil)".
func cli(t *testing.T, port string, args ...string) string {
	t.Helper()
	out, err := exec.Command(redisCLI(t), append([]string{"-p", port, "--no-raw"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
	}
	return strings.TrimRight(string(out), "\n")
}

// TestRedisCLI runs every command of the Redis protocol from redis-cli
// against the binary, and checks what HTTP sees of it.
func TestRedisCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	redisCLI(t)
	bin := tabreduceBin(t)
	p, port := startRedisBroker(t, bin, t.TempDir())
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"PING", "hello"}, `"hello"`},
		{[]string{"ECHO", "two words"}, `"two words"`},
		{[]string{"SELECT", "0"}, "OK"},
		{[]string{"SELECT", "1"}, "(error) ERR DB index is out of range"},
		{[]string{"SET", "greeting", "hello"}, "OK"},
		{[]string{"GET", "greeting"}, `"hello"`},
		{[]string{"GET", "missing"}, "(nil)"},
		{[]string{"APPEND", "greeting", " world"}, "(integer) 11"},
		{[]string{"GET", "greeting"}, `"hello world"`},
		{[]string{"SETNX", "greeting", "again"}, "(integer) 0"},
		{[]string{"SETNX", "fresh", "once"}, "(integer) 1"},
		{[]string{"SETEX", "brief", "100", "soon gone"}, "OK"},
		{[]string{"TTL", "brief"}, "(integer) 100"},
		{[]string{"TTL", "greeting"}, "(integer) -1"},
		{[]string{"TTL", "missing"}, "(integer) -2"},
		{[]string{"EXPIRE", "greeting", "50"}, "(integer) 1"},
		{[]string{"TTL", "greeting"}, "(integer) 50"},
		{[]string{"EXPIRE", "missing", "50"}, "(integer) 0"},
		{[]string{"INCR", "n"}, "(integer) 1"},
		{[]string{"INCRBY", "n", "41"}, "(integer) 42"},
		{[]string{"DECR", "n"}, "(integer) 41"},
		{[]string{"DECRBY", "n", "40"}, "(integer) 1"},
		{[]string{"INCR", "greeting"}, "(error) ERR invalid: invalid argument: value is not an integer or out of range"},
		{[]string{"MSET", "a", "1", "b", "2"}, "OK"},
		{[]string{"MGET", "a", "missing", "b"}, "1) \"1\"\n2) (nil)\n3) \"2\""},
		{[]string{"MSETEX", "2", "c", "3", "d", "4", "EX", "60"}, "(integer) 1"},
		{[]string{"MSETEX", "1", "c", "5", "NX", "EX", "60"}, "(integer) 0"},
		{[]string{"TTL", "d"}, "(integer) 60"},
		{[]string{"EXISTS", "a", "b", "missing"}, "(integer) 2"},
		{[]string{"DEL", "a", "missing"}, "(integer) 1"},
		{[]string{"DELETE", "b"}, "(integer) 1"},
		{[]string{"MDELETE", "c", "d", "missing"}, "(integer) 2"},
		{[]string{"EXISTS", "a", "b", "c", "d"}, "(integer) 0"},
		{[]string{"RPUSH", "tasks", "one", "two"}, "(integer) 2"},
		{[]string{"LPUSH", "tasks", "three"}, "(integer) 3"},
		{[]string{"LLEN", "tasks"}, "(integer) 3"},
		{[]string{"LPOP", "tasks"}, `"one"`},
		{[]string{"RPOP", "tasks"}, `"two"`},
		{[]string{"BLPOP", "tasks", "1"}, "1) \"tasks\"\n2) \"three\""},
		{[]string{"BRPOP", "tasks", "0.1"}, "(nil)"},
		{[]string{"LPOP", "tasks"}, "(nil)"},
		{[]string{"LLEN", "nothing"}, "(integer) 0"},
		{[]string{"PUBLISH", "room", "nobody listens"}, "(integer) 0"},
		{[]string{"UNSUBSCRIBE"}, "1) \"unsubscribe\"\n2) (nil)\n3) (integer) 0"},
		{[]string{"NOSUCH", "x"}, "(error) ERR unknown command 'NOSUCH', with args beginning with: 'x' "},
		{[]string{"GET"}, "(error) ERR wrong number of arguments for 'get' command"},
		{[]string{"AUTH", "secret"}, "(error) ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{[]string{"QUIT"}, "OK"},
	}
	for _, s := range steps {
		if got := cli(t, port, s.args...); got != s.want {
			t.Errorf("redis-cli %s:\n got %q\nwant %q", strings.Join(s.args, " "), got, s.want)
		}
	}
	if info := cli(t, port, "INFO"); !strings.Contains(info, "redis_version:") || !strings.Contains(info, "connected_clients:") {
		t.Errorf("redis-cli INFO = %q, want the server and clients sections", info)
	}

	// What redis-cli wrote, HTTP reads, and the other way round.
	if code, body, err := call(http.MethodGet, p.url+"/kv/n", "", nil); err != nil || code != 200 || string(body) != "1" {
		t.Errorf("GET /kv/n after INCR = %d %q %v, want the integer 1", code, body, err)
	}
	if code, _, err := call(http.MethodPut, p.url+"/kv/doc", "application/json", []byte(`{"list":[1,"two"]}`)); err != nil || code != 200 {
		t.Fatalf("PUT /kv/doc = %d, %v", code, err)
	}
	if got, want := cli(t, port, "GET", "doc"), `"{\"list\":[1,\"two\"]}"`; got != want {
		t.Errorf("redis-cli GET of a JSON value = %s, want its JSON text %s", got, want)
	}
	if code, _, err := call(http.MethodPost, p.url+"/q/tasks", "text/plain", []byte("from http")); err != nil || code != 200 {
		t.Fatalf("POST /q/tasks = %d, %v", code, err)
	}
	if got := cli(t, port, "RPOP", "tasks"); got != `"from http"` {
		t.Errorf("redis-cli RPOP of an HTTP push = %s", got)
	}
}

// A redis-cli SUBSCRIBE gets what redis-cli PUBLISH and HTTP send.
func TestRedisCLISubscribe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cliPath := redisCLI(t)
	p, port := startRedisBroker(t, tabreduceBin(t), t.TempDir())
	sub := exec.Command(cliPath, "-p", port, "SUBSCRIBE", "news")
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Process.Kill(); sub.Wait() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := func(l string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != l {
				t.Fatalf("redis-cli SUBSCRIBE printed %q, want %q", got, l)
			}
		case <-time.After(procWait):
			t.Fatalf("redis-cli SUBSCRIBE printed nothing for %v, want %q", procWait, l)
		}
	}
	want("subscribe")
	want("news")
	want("1")
	if got := cli(t, port, "PUBLISH", "news", "from redis-cli"); got != "(integer) 1" {
		t.Errorf("PUBLISH = %q, want one receiver", got)
	}
	want("message")
	want("news")
	want("from redis-cli")
	if code, _, err := call(http.MethodPost, p.url+"/pub/news", "text/plain", []byte("from http")); err != nil || code != 200 {
		t.Fatalf("POST /pub/news = %d, %v", code, err)
	}
	want("message")
	want("news")
	want("from http")
}

// With a token, redis-cli needs -a; FLUSHDB is refused without it.
func TestRedisCLIAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	redisCLI(t)
	_, port := startRedisBroker(t, tabreduceBin(t), t.TempDir(), "--token", "s3cret")
	for _, args := range [][]string{{"SET", "k", "v"}, {"FLUSHDB"}, {"RPUSH", "q", "v"}} {
		if got := cli(t, port, args...); !strings.HasPrefix(got, "(error) NOAUTH") {
			t.Errorf("redis-cli %s without -a = %q, want NOAUTH", args[0], got)
		}
	}
	if got := cli(t, port, "AUTH", "wrong"); !strings.HasPrefix(got, "(error) WRONGPASS") {
		t.Errorf("AUTH wrong = %q, want WRONGPASS", got)
	}
	for _, c := range [][2]string{{"SET k v", "OK"}, {"EXISTS k", "(integer) 1"}, {"FLUSHDB", "OK"}, {"EXISTS k", "(integer) 0"}} {
		if got := cli(t, port, append([]string{"-a", "s3cret", "--no-auth-warning"}, strings.Fields(c[0])...)...); got != c[1] {
			t.Errorf("redis-cli -a %s = %q, want %q", c[0], got, c[1])
		}
	}
}

// A value acknowledged over the wire with fsync always survives kill -9.
func TestRedisKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	redisCLI(t)
	bin, dir := tabreduceBin(t), t.TempDir()
	p, port := startRedisBroker(t, bin, dir)
	cmds := "SET kept v1\nINCRBY counter 5\nRPUSH q m1 m2\nLPOP q\n"
	c := exec.Command(redisCLI(t), "-p", port)
	c.Stdin = strings.NewReader(cmds)
	if out, err := c.CombinedOutput(); err != nil || string(out) != "OK\n5\n2\nm1\n" {
		t.Fatalf("redis-cli script = %q, %v", out, err)
	}
	p.kill(t)
	_, port = startRedisBroker(t, bin, dir)
	for _, c := range [][2]string{{"GET kept", `"v1"`}, {"GET counter", `"5"`}, {"LLEN q", "(integer) 1"}, {"LPOP q", `"m2"`}} {
		if got := cli(t, port, strings.Fields(c[0])...); got != c[1] {
			t.Errorf("after kill -9: %s = %q, want %q", c[0], got, c[1])
		}
	}
}
