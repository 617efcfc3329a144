package server_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server"
)

// The wire runs unchanged on the Redis store: typed values round-trip,
// atomic increments lose nothing, BLPOP is woken by a push over HTTP, and
// FLUSHDB empties the public namespace.
func TestRESPOnTheRedisStore(t *testing.T) {
	r := startRedis(t)
	s := startRESP(t, server.Config{StoreURL: r.URL("wire")})
	c := dialSeed(t, s.RedisAddr())
	value := []any{"text", []byte{0, 0xff}, int64(7), 2.5, nil, seedDict{{int64(1), seedSet{"a", []byte("a")}}}}
	sameReply(t, "SET", c.do("SET", "typed", value), seedSimple("OK"))
	sameReply(t, "GET", c.do("GET", "typed"), value)
	if got := string(s.get("/kv/typed").want(t, http.StatusOK).Body); got != `["text",{"value_b64":"AP8="},7,2.5,null,{"value_dict":[[1,{"value_set":["a",{"value_b64":"YQ=="}]}]]}]` {
		t.Errorf("GET /kv/typed = %s", got)
	}

	ctx := t.Context()
	rdb := goRedis(t, s.RedisAddr(), redis.Options{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if err := rdb.Incr(ctx, "n").Err(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	expect(t, "GET after 200 concurrent INCRs", "200")(rdb.Get(ctx, "n").Result())
	expect(t, "SETNX of a present key", false)(rdb.SetNX(ctx, "n", "x", 0).Result())
	expect(t, "APPEND", int64(5))(rdb.Append(ctx, "n", "ab").Result())
	expect(t, "EXPIRE", true)(rdb.Expire(ctx, "n", time.Hour).Result())
	expect(t, "TTL", time.Hour)(rdb.TTL(ctx, "n").Result())

	s.push("jobs", "x")
	s.take("jobs")
	got := make(chan string, 1)
	go func() {
		v, err := rdb.BLPop(ctx, waitFor, "jobs").Result()
		got <- fmt.Sprint(v, err)
	}()
	s.waitConsumers("jobs", 1)
	s.push("jobs", "woken")
	if v := <-got; v != "[jobs woken] <nil>" {
		t.Errorf("BLPOP on the Redis store = %s, want [jobs woken]", v)
	}
	expect(t, "FLUSHDB", "OK")(rdb.FlushDB(ctx).Result())
	expect(t, "EXISTS after FLUSHDB", int64(0))(rdb.Exists(ctx, "n", "typed").Result())
	sameReply(t, "GET after FLUSHDB", c.do("GET", "typed"), nil)
}
