package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/engine"
)

// FLUSHDB empties the public namespace, every key and queue, and leaves the
// engine's state whole: a finished job keeps its output, a streaming job
// goes on mapping what arrives after.
func TestRESPFlushKeepsEngineState(t *testing.T) {
	s := startRESP(t, server.Config{LocalWorkers: 1})
	ctx := context.Background()
	eng, b := s.Engine(), s.Broker()
	done := runJob(t, eng, engine.Spec{Module: "wordcount", Reducers: 2, Verify: engine.VerifyNone}, "to be or not to be")
	before, _ := jobOutput(t, eng, done.ID)
	stream, err := eng.Submit(ctx, engine.Spec{Module: "wordcount", Stream: true, InputQueue: "events", OutputQueue: "counts", Verify: engine.VerifyNone}, nil)
	if err != nil {
		t.Fatal(err)
	}

	rdb := goRedis(t, s.RedisAddr(), redis.Options{})
	rdb.Set(ctx, "k", "v", 0)
	rdb.RPush(ctx, "public", "m")
	s.kvPut("doc", `{"a":1}`, "application/json").want(t, http.StatusOK)
	expect(t, "FLUSHDB", "OK")(rdb.FlushDB(ctx).Result())

	expect(t, "EXISTS after FLUSHDB", int64(0))(rdb.Exists(ctx, "k", "doc").Result())
	expect(t, "LLEN after FLUSHDB", int64(0))(rdb.LLen(ctx, "public").Result())
	s.get("/kv/doc").wantError(t, http.StatusNotFound)
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range list {
		if q.Name == "public" {
			t.Errorf("queue %q is still listed after FLUSHDB", q.Name)
		}
	}
	if st, err := eng.Job(ctx, done.ID); err != nil || st.State != engine.StateDone {
		t.Fatalf("the finished job after FLUSHDB: %+v, %v", st, err)
	}
	if after, _ := jobOutput(t, eng, done.ID); !maps.Equal(after, before) {
		t.Errorf("the finished job's output after FLUSHDB = %v, want %v", after, before)
	}
	if _, err := b.Push(ctx, "events", []broker.NewMessage{{Value: []byte("after after")}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := b.Take(ctx, "counts")
		if err == nil {
			var pair struct{ Key, Value string }
			if err := json.Unmarshal(m.Value, &pair); err != nil || pair.Key != "after" || pair.Value != "2" {
				t.Errorf("the streaming job's output after FLUSHDB = %s, want after=2", m.Value)
			}
			break
		}
		if !errors.Is(err, broker.ErrQueueEmpty) || time.Now().After(deadline) {
			t.Fatalf("the streaming job mapped nothing after FLUSHDB: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, err := eng.Cancel(ctx, stream.ID); err != nil || st.State != engine.StateCancelled {
		t.Fatalf("cancel the streaming job: %v", err)
	}
}

// The engine's queues and records are not reachable over the wire, as
// over HTTP: their names are refused, and keys spelled like records are
// ordinary keys.
func TestRESPInternalNamesUnreachable(t *testing.T) {
	s := startRESP(t, server.Config{LocalWorkers: 1})
	ctx := context.Background()
	done := runJob(t, s.Engine(), engine.Spec{Module: "wordcount", Reducers: 1, Verify: engine.VerifyNone}, "a b a")
	rdb := goRedis(t, s.RedisAddr(), redis.Options{})
	for _, q := range []string{"job/" + done.ID + "/out", "job/" + done.ID + "/map"} {
		for name, err := range map[string]error{
			"LPOP":  rdb.LPop(ctx, q).Err(),
			"RPUSH": rdb.RPush(ctx, q, "forged").Err(),
			"LLEN":  rdb.LLen(ctx, q).Err(),
			"BLPOP": rdb.Do(ctx, "BLPOP", q, "0.1").Err(),
		} {
			if err == nil || !strings.Contains(err.Error(), "ERR invalid") {
				t.Errorf("%s %s: error = %v, want the name refused", name, q, err)
			}
		}
	}
	if err := rdb.Get(ctx, "job/"+done.ID).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET of a key spelled like the job's record: error = %v, want nil: records are not keys", err)
	}
	rdb.Set(ctx, "job/"+done.ID, `{"id":"../../victim","state":"running"}`, 0)
	if st, err := s.Engine().Job(ctx, done.ID); err != nil || st.State != engine.StateDone {
		t.Errorf("the job after a SET of its record's name: %+v, %v; want it untouched", st, err)
	}
	if out, _ := jobOutput(t, s.Engine(), done.ID); out["a"] != "2" {
		t.Errorf("the job's output after LPOP attempts = %v, want a=2", out)
	}
}
