package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server"
)

// The wire's lists are the broker's queues: what one side pushes the other
// takes, text and bytes alike.
func TestRESPQueuesAreTheBrokersQueues(t *testing.T) {
	s := startRESP(t, server.Config{})
	rdb := goRedis(t, s.RedisAddr(), redis.Options{})
	ctx := t.Context()
	expect(t, "RPUSH", int64(2))(rdb.RPush(ctx, "jobs", "first", []byte{0xff, 0}).Result())
	if m := s.take("jobs"); m.Key != "jobs:1" || m.Value != "first" {
		t.Errorf("GET /q/jobs after RPUSH = %+v, want jobs:1 first", m)
	}
	if m := s.take("jobs"); m.Encoding != "base64" || m.Value != base64.StdEncoding.EncodeToString([]byte{0xff, 0}) {
		t.Errorf("GET /q/jobs of a binary message = %+v, want it in base64", m)
	}
	s.push("jobs", "over http")
	s.do(http.MethodPost, "/q/jobs", bytes.NewReader([]byte{0, 1, 2}), "Content-Type", "application/octet-stream").want(t, http.StatusOK)
	expect(t, "LPOP of an HTTP push", "over http")(rdb.LPop(ctx, "jobs").Result())
	expect(t, "RPOP of a binary HTTP push", "\x00\x01\x02")(rdb.RPop(ctx, "jobs").Result())
	if st := s.stats("jobs"); st.Pushed != 4 || st.Delivered != 4 || st.Length != 0 {
		t.Errorf("stats after four pushes and takes = %+v", st)
	}

	// Pause holds on the wire too: LPOP refuses, BLPOP waits for the resume.
	s.push("jobs", "held")
	s.control("jobs", "stop")
	if _, err := rdb.LPop(ctx, "jobs").Result(); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("LPOP of a paused queue: error = %v, want paused", err)
	}
	got := make(chan []string, 1)
	go func() {
		v, _ := rdb.BLPop(ctx, waitFor, "jobs").Result()
		got <- v
	}()
	s.waitConsumers("jobs", 1)
	select {
	case v := <-got:
		t.Fatalf("BLPOP of a paused queue returned %v, want it waiting", v)
	case <-time.After(100 * time.Millisecond):
	}
	s.control("jobs", "start")
	select {
	case v := <-got:
		if strings.Join(v, " ") != "jobs held" {
			t.Errorf("BLPOP after resume = %v, want [jobs held]", v)
		}
	case <-time.After(waitFor):
		t.Fatal("BLPOP did not return after the queue resumed")
	}
}

// BLPOP waits like a COMET consumer: the pushed message is its, taken once.
func TestRESPBLPOPTakesWhatArrives(t *testing.T) {
	s := startRESP(t, server.Config{})
	rdb := goRedis(t, s.RedisAddr(), redis.Options{})
	s.push("wait", "x")
	s.take("wait")
	got := make(chan []string, 1)
	go func() {
		v, err := rdb.BLPop(t.Context(), waitFor, "other", "wait").Result()
		if err != nil {
			t.Errorf("BLPOP: %v", err)
		}
		got <- v
	}()
	s.waitConsumers("wait", 1)
	s.push("wait", "arrived")
	if v := <-got; strings.Join(v, " ") != "wait arrived" {
		t.Errorf("BLPOP = %v, want [wait arrived]", v)
	}
	s.waitStats("wait", "the delivery is acked", func(st queueStats) bool {
		return st.Consumers == 0 && st.InFlight == 0 && st.Length == 0 && st.Acked == 1
	})
}

// A BLPOP client that hangs up takes nothing with it: a message pushed after
// reaches the next consumer.
func TestRESPBLPOPNoLossOnDisconnect(t *testing.T) {
	s := startRESP(t, server.Config{})
	s.push("nl", "x")
	s.take("nl")
	gone := dialSeed(t, s.RedisAddr())
	gone.send([]byte("BLPOP"), []byte("nl"), []byte("0"))
	stays := goRedis(t, s.RedisAddr(), redis.Options{})
	got := make(chan []string, 1)
	go func() {
		v, _ := stays.BLPop(t.Context(), waitFor, "nl").Result()
		got <- v
	}()
	s.waitConsumers("nl", 2)
	gone.nc.Close()
	s.waitConsumers("nl", 1)
	for _, v := range []string{"m1", "m2"} {
		s.push("nl", v)
	}
	if v := <-got; strings.Join(v, " ") != "nl m1" {
		t.Errorf("BLPOP of the client that stayed = %v, want [nl m1]", v)
	}
	expect(t, "LPOP of the rest", "m2")(stays.LPop(t.Context(), "nl").Result())
}

// Channels are the hub's: HTTP and WebSocket publishers reach RESP
// subscribers, and RESP publishers reach WebSocket subscribers.
func TestRESPPubSubMeetsHTTP(t *testing.T) {
	s := startRESP(t, server.Config{})
	ctx := t.Context()
	rdb := goRedis(t, s.RedisAddr(), redis.Options{})
	ps := rdb.Subscribe(ctx, "room")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	wsCtx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(wsCtx, "ws"+strings.TrimPrefix(s.URL(), "http")+"/ws/pubsub/room?events=json", nil)
	if err != nil {
		t.Fatalf("dial the pub/sub WebSocket: %v", err)
	}
	defer ws.CloseNow()
	readWS := func(want, from string) {
		t.Helper()
		for {
			_, frame, err := ws.Read(wsCtx)
			if err != nil {
				t.Fatalf("WebSocket read: %v", err)
			}
			var env struct{ Type, From, Data string }
			if err := json.Unmarshal(frame, &env); err != nil {
				t.Fatalf("WebSocket frame %s: %v", frame, err)
			}
			if env.Type == "message" {
				if env.Data != want || env.From != from {
					t.Errorf("WebSocket message = %+v, want %q from %s", env, want, from)
				}
				return
			}
		}
	}
	eventually(t, "both subscribers are in the room", func() bool {
		return strings.Count(string(s.get("/presence/room").Body), `"id"`) == 2
	})
	s.do(http.MethodPost, "/pub/room", strings.NewReader("from http"), "Content-Type", "text/plain").want(t, http.StatusOK)
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil || msg.Channel != "room" || msg.Payload != "from http" {
		t.Errorf("RESP subscriber got %+v, %v; want the HTTP message", msg, err)
	}
	readWS("from http", "http")
	expect(t, "PUBLISH", int64(2))(rdb.Publish(ctx, "room", "from resp").Result())
	readWS("from resp", "resp")
	if msg, err := ps.ReceiveMessage(ctx); err != nil || msg.Payload != "from resp" {
		t.Errorf("RESP subscriber got %+v, %v; want its own message", msg, err)
	}
}

// A subscribed RESP2 connection runs only the pub/sub commands until it
// has left every channel.
func TestRESPSubscribedMode(t *testing.T) {
	s := startRESP(t, server.Config{})
	c := dialSeed(t, s.RedisAddr())
	sameReply(t, "SUBSCRIBE", c.do([]byte("SUBSCRIBE"), []byte("a"), []byte("b")), []any{[]byte("subscribe"), []byte("a"), int64(1)})
	sameReply(t, "second subscribe reply", c.reply(), []any{[]byte("subscribe"), []byte("b"), int64(2)})
	if e, ok := c.do([]byte("GET"), []byte("k")).(seedError); !ok || !strings.Contains(string(e), "only SUBSCRIBE") {
		t.Errorf("GET while subscribed = %v, want an error", e)
	}
	sameReply(t, "PING while subscribed", c.do([]byte("PING")), []any{[]byte("pong"), []byte("")})
	s.do(http.MethodPost, "/pub/b", strings.NewReader("hi"), "Content-Type", "text/plain").want(t, http.StatusOK)
	sameReply(t, "message", c.reply(), []any{[]byte("message"), []byte("b"), []byte("hi")})
	sameReply(t, "UNSUBSCRIBE", c.do([]byte("UNSUBSCRIBE")), []any{[]byte("unsubscribe"), []byte("a"), int64(1)})
	sameReply(t, "second unsubscribe reply", c.reply(), []any{[]byte("unsubscribe"), []byte("b"), int64(0)})
	sameReply(t, "GET after UNSUBSCRIBE", c.do([]byte("GET"), []byte("k")), nil)
}

// A malformed request gets an error reply and the connection closes; a
// well-formed one that is wrong gets an error reply and the connection
// stays usable.
func TestRESPBadInput(t *testing.T) {
	s := startRESP(t, server.Config{MaxBody: 1 << 10})
	malformed := map[string]string{
		"bad length":        "*1\r\n$x\r\n",
		"bulk without CRLF": "*1\r\n$3\r\nGETxx",
		"bulk too large":    "*2\r\n$3\r\nGET\r\n$2000\r\n",
		"text not UTF-8":    "*2\r\n$3\r\nGET\r\n^2\r\n\xff\xfe\r\n",
		"nested too deep":   "*1\r\n" + strings.Repeat("*1\r\n", 100) + ":1\r\n",
		"too many elements": "*99999999\r\n",
		"count overflow":    "*99999999999999999999\r\n",
		"negative length":   "*1\r\n$-5\r\n",
		"bad integer":       "*2\r\n$4\r\nECHO\r\n:12x\r\n",
		"bad JSON":          "*2\r\n$4\r\nECHO\r\n@2\r\n{x\r\n",
		"unknown type":      "*1\r\n!3\r\nabc\r\n",
		"inline too long":   strings.Repeat("x", 70<<10) + "\r\n",
	}
	for name, req := range malformed {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", s.RedisAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(waitFor))
			go io.WriteString(nc, req) // a large request may not be read whole
			all, err := io.ReadAll(nc)
			if err != nil && !isReset(err) {
				t.Fatalf("read: %v", err)
			}
			if !bytes.HasPrefix(all, []byte("-ERR Protocol error")) || bytes.Count(all, []byte("\r\n")) != 1 {
				t.Errorf("reply = %q, want one protocol error and the connection closed", all)
			}
		})
	}
	c := dialSeed(t, s.RedisAddr())
	wrong := [][]any{
		{[]byte("NOSUCH")},
		{[]byte("GET")},
		{[]byte("GET"), []byte("a"), []byte("b")},
		{[]byte("GET"), []byte("")},
		{[]byte("GET"), []byte(strings.Repeat("k", 513))},
		{[]byte("SET"), []byte("k"), []byte("v"), []byte("EX")},
		{[]byte("SET"), []byte("k"), []byte("v"), []byte("EX"), []byte("-1")},
		{[]byte("INCRBY"), []byte("k"), []byte("x")},
		{[]byte("SETEX"), []byte("k"), []byte("0"), []byte("v")},
		{[]byte("RPUSH"), []byte("a/b"), []byte("v")},
		{[]byte("LPOP"), []byte("")},
		{[]byte("BLPOP"), []byte("q"), []byte("soon")},
		{[]byte("BLPOP"), []byte("q"), []byte("-1")},
		{[]byte("MSET"), []byte("a")},
		{[]byte("MSETEX"), []byte("5"), []byte("a"), []byte("1")},
		{[]byte("SELECT"), []byte("2")},
		{[]byte("HELLO"), []byte("4")},
		{[]byte("RPUSH"), []byte("q"), seedDict{{"a", int64(1)}}},
		{int64(5)},
	}
	for _, cmd := range wrong {
		c.send(cmd...)
		if _, ok := c.reply().(seedError); !ok {
			t.Errorf("%q: want an error reply", cmd)
		}
	}
	// Not a typed request: an inline command line, unknown.
	io.WriteString(c.nc, "-ERR nope\r\n")
	if e, ok := c.reply().(seedError); !ok || !strings.Contains(string(e), "unknown command") {
		t.Errorf("an inline '-ERR nope' = %v, want unknown command", e)
	}
	sameReply(t, "PING after the errors", c.do([]byte("PING")), seedSimple("PONG"))
	if st := s.stats("q"); st.Pushed != 0 || st.Length != 0 {
		t.Errorf("stats of q after refused pushes = %+v, want nothing pushed", st)
	}
	s.get("/kv/k").wantError(t, http.StatusNotFound)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// Closing the server ends blocked, subscribed and idle clients at once.
func TestRESPShutdown(t *testing.T) {
	s := startRESP(t, server.Config{})
	blocked, sub, idle := dialSeed(t, s.RedisAddr()), dialSeed(t, s.RedisAddr()), dialSeed(t, s.RedisAddr())
	s.push("q", "x")
	s.take("q")
	blocked.send([]byte("BLPOP"), []byte("q"), []byte("0"))
	sub.do([]byte("SUBSCRIBE"), []byte("ch"))
	idle.do([]byte("PING"))
	s.waitConsumers("q", 1)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("close took %v with blocked and subscribed clients, want it prompt", d)
	}
	for _, c := range []*seedClient{blocked, sub, idle} {
		c.nc.SetReadDeadline(time.Now().Add(waitFor))
		rest, _ := io.ReadAll(c.br)
		if len(rest) > 0 && !bytes.HasPrefix(rest, []byte("-ERR")) {
			t.Errorf("a client got %q at shutdown, want nothing or an error", rest)
		}
	}
}

// BLPOP clients share a queue as Redis's share a list, whatever its live
// policy: each message reaches one of them, while a COMET consumer of a
// broadcast queue still gets every message.
func TestRESPBLPOPClientsShareAQueue(t *testing.T) {
	s := startRESP(t, server.Config{})
	s.push("shared", "x")
	s.take("shared")
	s.setPolicy("shared", "broadcast")
	comet := s.comet("shared")
	got := make(chan string, 4)
	for range 2 {
		rdb := goRedis(t, s.RedisAddr(), redis.Options{})
		go func() {
			v, err := rdb.BLPop(t.Context(), waitFor, "shared").Result()
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- v[1]
		}()
	}
	s.waitConsumers("shared", 3)
	s.push("shared", "m1")
	s.push("shared", "m2")
	a, b := <-got, <-got
	if !(a == "m1" && b == "m2" || a == "m2" && b == "m1") {
		t.Errorf("the two BLPOP clients got %q and %q, want m1 and m2 once each", a, b)
	}
	if ms := comet.nextN(t, 2); ms[0].Value != "m1" || ms[1].Value != "m2" {
		t.Errorf("the COMET consumer of the broadcast queue got %+v, want both messages", ms)
	}
}
