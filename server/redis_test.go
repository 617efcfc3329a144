package server_test

import (
	"maps"
	"testing"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
)

// startRedis starts a redis-server for one test.
func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	r, err := redistest.Start(t.TempDir(), redistest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// The engine runs unchanged on the Redis store: a wordcount on one server
// whose state is in Redis equals the oracle.
func TestWordcountOnRedis(t *testing.T) {
	r := startRedis(t)
	srv := startServer(t, server.Config{LocalWorkers: 2, StoreURL: r.URL("wc")})
	text := corpus(200_000, 11)
	st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 16 << 10, Reducers: 3}, text)
	if st.State != engine.StateDone {
		t.Fatalf("state %s, error %q", st.State, st.Error)
	}
	got, _ := jobOutput(t, srv.Engine(), st.ID)
	if want := wordcountOracle(text); !maps.Equal(got, want) {
		t.Errorf("output differs from the oracle:\n got %v\nwant %v", got, want)
	}
	// The queue API works on it too.
	key := srv.push("q", "hello")
	if m := srv.take("q"); m.Key != key || m.Value != "hello" {
		t.Errorf("took %+v, want %s hello", m, key)
	}
}
