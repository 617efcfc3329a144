package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server"
)

func goRedis(t *testing.T, addr string, opts redis.Options) *redis.Client {
	t.Helper()
	opts.Addr = addr
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = waitFor, waitFor, waitFor
	rdb := redis.NewClient(&opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// expect returns a check of a command's result: no error, and want.
func expect[T comparable](t *testing.T, what string, want T) func(T, error) {
	t.Helper()
	return func(got T, err error) {
		t.Helper()
		wantVal(t, what, got, err, want)
	}
}

func wantVal[T comparable](t *testing.T, what string, got T, err error, want T) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// go-redis, in RESP2 and RESP3, runs every key/value and list command.
func TestRESPGoRedis(t *testing.T) {
	s := startRESP(t, server.Config{})
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			rdb := goRedis(t, s.RedisAddr(), redis.Options{Protocol: proto})
			ctx := t.Context()
			p := fmt.Sprintf("p%d:", proto) // keys and queues of this run, Redis-style names
			expect(t, "PING", "PONG")(rdb.Ping(ctx).Result())
			expect(t, "ECHO", "hi")(rdb.Echo(ctx, "hi").Result())
			s1, err := rdb.Set(ctx, p+"k", "v", 0).Result()
			wantVal(t, "SET", s1, err, "OK")
			g, err := rdb.Get(ctx, p+"k").Result()
			wantVal(t, "GET", g, err, "v")
			if _, err := rdb.Get(ctx, p+"missing").Result(); !errors.Is(err, redis.Nil) {
				t.Errorf("GET of a missing key: error = %v, want redis.Nil", err)
			}
			n, err := rdb.Incr(ctx, p+"n").Result()
			wantVal(t, "INCR", n, err, 1)
			n, err = rdb.IncrBy(ctx, p+"n", 41).Result()
			wantVal(t, "INCRBY", n, err, 42)
			n, err = rdb.Decr(ctx, p+"n").Result()
			wantVal(t, "DECR", n, err, 41)
			n, err = rdb.DecrBy(ctx, p+"n", 40).Result()
			wantVal(t, "DECRBY", n, err, 1)
			g, err = rdb.Get(ctx, p+"n").Result()
			wantVal(t, "GET of a counter", g, err, "1")
			n, err = rdb.Append(ctx, p+"k", "alue").Result()
			wantVal(t, "APPEND", n, err, 5)
			ok, err := rdb.SetNX(ctx, p+"k", "x", 0).Result()
			wantVal(t, "SETNX of a present key", ok, err, false)
			ok, err = rdb.SetNX(ctx, p+"nx", "x", 0).Result()
			wantVal(t, "SETNX of a missing key", ok, err, true)
			s1, err = rdb.SetEx(ctx, p+"ex", "v", time.Minute).Result()
			wantVal(t, "SETEX", s1, err, "OK")
			d, err := rdb.TTL(ctx, p+"ex").Result()
			wantVal(t, "TTL", d, err, time.Minute)
			ok, err = rdb.Expire(ctx, p+"k", time.Hour).Result()
			wantVal(t, "EXPIRE", ok, err, true)
			d, err = rdb.TTL(ctx, p+"k").Result()
			wantVal(t, "TTL after EXPIRE", d, err, time.Hour)
			d, err = rdb.TTL(ctx, p+"nx").Result()
			wantVal(t, "TTL of a key without expiry", d, err, -1)
			s1, err = rdb.MSet(ctx, p+"a", "1", p+"b", "2").Result()
			wantVal(t, "MSET", s1, err, "OK")
			vals, err := rdb.MGet(ctx, p+"a", p+"missing", p+"b").Result()
			if err != nil {
				t.Fatalf("%s: %v", "MGET", err)
			}
			if fmt.Sprint(vals) != "[1 <nil> 2]" {
				t.Errorf("MGET = %v, want [1 <nil> 2]", vals)
			}
			n, err = rdb.Exists(ctx, p+"a", p+"b", p+"missing").Result()
			wantVal(t, "EXISTS", n, err, 2)
			n, err = rdb.Del(ctx, p+"a", p+"b", p+"missing").Result()
			wantVal(t, "DEL", n, err, 2)
			s1, err = rdb.SetArgs(ctx, p+"opt", "v", redis.SetArgs{Mode: "NX", TTL: time.Minute}).Result()
			wantVal(t, "SET NX EX", s1, err, "OK")
			if _, err := rdb.SetArgs(ctx, p+"opt", "w", redis.SetArgs{Mode: "NX"}).Result(); !errors.Is(err, redis.Nil) {
				t.Errorf("SET NX of a present key: error = %v, want redis.Nil", err)
			}
			g, err = rdb.SetArgs(ctx, p+"opt", "w", redis.SetArgs{Get: true, KeepTTL: true}).Result()
			wantVal(t, "SET GET KEEPTTL", g, err, "v")
			d, err = rdb.TTL(ctx, p+"opt").Result()
			wantVal(t, "TTL after KEEPTTL", d, err, time.Minute)

			q := p + "queue"
			n, err = rdb.RPush(ctx, q, "a", "b").Result()
			wantVal(t, "RPUSH", n, err, 2)
			n, err = rdb.LPush(ctx, q, "c").Result()
			wantVal(t, "LPUSH", n, err, 3)
			n, err = rdb.LLen(ctx, q).Result()
			wantVal(t, "LLEN", n, err, 3)
			g, err = rdb.LPop(ctx, q).Result()
			wantVal(t, "LPOP", g, err, "a")
			g, err = rdb.RPop(ctx, q).Result()
			wantVal(t, "RPOP", g, err, "b")
			kv, err := rdb.BLPop(ctx, time.Second, p+"empty", q).Result()
			if err != nil {
				t.Fatalf("%s: %v", "BLPOP", err)
			}
			if fmt.Sprint(kv) != "["+q+" c]" {
				t.Errorf("BLPOP = %v, want [%s c]", kv, q)
			}
			// go-redis rounds timeouts under a second up to one; BRPOP takes tenths.
			if _, err := rdb.Do(ctx, "BRPOP", q, "0.1").Result(); !errors.Is(err, redis.Nil) {
				t.Errorf("BRPOP of an empty queue: error = %v, want redis.Nil after the timeout", err)
			}
			if _, err := rdb.LPop(ctx, q).Result(); !errors.Is(err, redis.Nil) {
				t.Errorf("LPOP of an empty queue: error = %v, want redis.Nil", err)
			}
			rdb.RPush(ctx, q, "x", "y", "z")
			popped, err := rdb.LPopCount(ctx, q, 2).Result()
			if err != nil {
				t.Fatalf("%s: %v", "LPOP count", err)
			}
			if fmt.Sprint(popped) != "[x y]" {
				t.Errorf("LPOP %s 2 = %v, want [x y]", q, popped)
			}

			expect(t, "SELECT 0", "OK")(rdb.Do(ctx, "SELECT", 0).Text())
			if _, err := rdb.Do(ctx, "SELECT", 1).Result(); err == nil {
				t.Error("SELECT 1 succeeded, want an error: there is one database")
			}
			info, err := rdb.Info(ctx, "server").Result()
			if err != nil {
				t.Fatalf("%s: %v", "INFO", err)
			}
			if !strings.Contains(info, "redis_version:") {
				t.Errorf("INFO server = %q, want a redis_version line", info)
			}
			if _, err := rdb.Do(ctx, "NOSUCH", "x").Result(); err == nil || !strings.Contains(err.Error(), "unknown command") {
				t.Errorf("an unknown command: error = %v, want unknown command", err)
			}
			expect(t, "PING after an error", "PONG")(rdb.Ping(ctx).Result())
		})
	}
}

// A pipeline of many commands is answered in order.
func TestRESPPipeline(t *testing.T) {
	s := startRESP(t, server.Config{})
	rdb := goRedis(t, s.RedisAddr(), redis.Options{})
	ctx := t.Context()
	pipe := rdb.Pipeline()
	var incrs []*redis.IntCmd
	for i := range 200 {
		pipe.Set(ctx, fmt.Sprintf("k%d", i), i, 0)
		incrs = append(incrs, pipe.Incr(ctx, "counter"))
	}
	get := pipe.Get(ctx, "k199")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	for i, c := range incrs {
		if c.Val() != int64(i+1) {
			t.Fatalf("INCR %d in the pipeline = %d, want %d", i, c.Val(), i+1)
		}
	}
	wantVal(t, "GET at the pipeline's end", get.Val(), get.Err(), "199")
}

// RESP3 shows typed values in RESP3's own types; RESP2 as strings.
func TestRESPTypedValuesOverGoRedis(t *testing.T) {
	s := startRESP(t, server.Config{})
	s.kvPut("doc", `{"a":[1,2.5,null,true],"b":{"value_set":["x"]},"c":{"value_b64":"AAE="}}`, "application/json").want(t, http.StatusOK)
	ctx := t.Context()
	r2 := goRedis(t, s.RedisAddr(), redis.Options{Protocol: 2})
	g, err := r2.Get(ctx, "doc").Result()
	wantVal(t, "RESP2 GET of a dict", g, err, `{"a":[1,2.5,null,true],"b":{"value_set":["x"]},"c":{"value_b64":"AAE="}}`)
	r3 := goRedis(t, s.RedisAddr(), redis.Options{Protocol: 3})
	v, err := r3.Do(ctx, "GET", "doc").Result()
	if err != nil {
		t.Fatalf("%s: %v", "RESP3 GET", err)
	}
	got := fmt.Sprintf("%v", v)
	if want := "map[a:[1 2.5 <nil> true] b:[x] c:\x00\x01]"; got != want {
		t.Errorf("RESP3 GET of a dict = %q, want %q", got, want)
	}
	s.kvPut("n", `7`, "application/json").want(t, http.StatusOK)
	n, err := r3.Get(ctx, "n").Int()
	wantVal(t, "RESP3 GET of an integer", n, err, 7)
}

// With a token, nothing but housekeeping runs before AUTH; go-redis
// authenticates with HELLO 3 AUTH; public reads stay open.
func TestRESPAuth(t *testing.T) {
	s := startRESP(t, server.Config{Token: "sesame", PublicRead: []string{"pub.*"}})
	ctx := t.Context()
	c := dialSeed(t, s.RedisAddr())
	for _, cmd := range [][]any{{[]byte("GET"), []byte("k")}, {[]byte("SET"), []byte("pub.k"), []byte("v")}, {[]byte("RPUSH"), []byte("q"), []byte("v")},
		{[]byte("FLUSHDB")}, {[]byte("INFO")}, {[]byte("MGET"), []byte("pub.a"), []byte("private")}} {
		if e, ok := c.do(cmd...).(seedError); !ok || !strings.HasPrefix(string(e), "NOAUTH") {
			t.Errorf("%s without AUTH = %v, want NOAUTH", cmd[0], e)
		}
	}
	sameReply(t, "PING without AUTH", c.do([]byte("PING")), seedSimple("PONG"))
	sameReply(t, "GET of a public key without AUTH", c.do([]byte("GET"), []byte("pub.k")), nil)
	sameReply(t, "LPOP of a public queue without AUTH", c.do([]byte("LPOP"), []byte("pub.q")), nil)
	if e, ok := c.do([]byte("AUTH"), []byte("wrong")).(seedError); !ok || !strings.HasPrefix(string(e), "WRONGPASS") {
		t.Errorf("AUTH with the wrong token = %v, want WRONGPASS", e)
	}
	sameReply(t, "AUTH", c.do([]byte("AUTH"), []byte("sesame")), seedSimple("OK"))
	sameReply(t, "SET after AUTH", c.do([]byte("SET"), []byte("pub.k"), []byte("v")), seedSimple("OK"))

	anon := goRedis(t, s.RedisAddr(), redis.Options{Protocol: 2})
	if _, err := anon.Set(ctx, "x", "1", 0).Result(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("go-redis SET without a password: error = %v, want NOAUTH", err)
	}
	g, err := anon.Get(ctx, "pub.k").Result()
	wantVal(t, "go-redis GET of a public key without a password", g, err, "v")
	for _, proto := range []int{2, 3} {
		rdb := goRedis(t, s.RedisAddr(), redis.Options{Protocol: proto, Password: "sesame"})
		expect(t, fmt.Sprintf("RESP%d SET with the password", proto), "OK")(rdb.Set(ctx, "x", "1", 0).Result())
	}
	bad := goRedis(t, s.RedisAddr(), redis.Options{Password: "wrong"})
	if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("go-redis with the wrong password: error = %v, want WRONGPASS", err)
	}
}

// An address other machines can reach needs a token, as for HTTP.
func TestRESPAddrNeedsToken(t *testing.T) {
	_, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", RedisAddr: "0.0.0.0:0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "redis addr") {
		t.Fatalf("start with --redis-addr 0.0.0.0 and no token: error = %v, want a refusal", err)
	}
}
