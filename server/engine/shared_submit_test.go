package engine

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/redisstore"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// newSharedEngine starts an engine in shared mode on a real redis-server.
func newSharedEngine(t *testing.T) *testEngine {
	t.Helper()
	rs, err := redistest.Start(t.TempDir(), redistest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	log := slog.New(slog.DiscardHandler)
	store, err := redisstore.Open(context.Background(), rs.URL("engine"), redisstore.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(context.Background(), store, broker.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: t.TempDir(), Logger: log, HeartbeatInterval: time.Hour, Shared: store.Blobs(), Server: "A",
		Builtins: map[string][]byte{"noop": wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/noop")}}
	e, err := New(context.Background(), cfg, b.Internal(), wasmtest.Runner(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		b.Close()
		store.Close()
	})
	return &testEngine{Engine: e, b: b}
}

// TestSubmitKeepsTheAdoptedJob: on a shared store the sharer may adopt a
// job from the push event of its own tasks before Submit lists it (and
// lease its tasks into that job); Submit must keep that job, not replace
// it, or the tasks leased meanwhile are orphaned (a result held for
// verification on one then waits for its lease to lapse).
func TestSubmitKeepsTheAdoptedJob(t *testing.T) {
	e := newSharedEngine(t)
	var adopted *job
	testHookSubmitted = func(e *Engine, id string) {
		// Let the sharer adopt the job from its event, as it may.
		deadline := time.Now().Add(waitFor)
		for adopted == nil && time.Now().Before(deadline) {
			e.markDirty(id)
			time.Sleep(5 * time.Millisecond)
			adopted = e.lookupLocal(id)
		}
	}
	t.Cleanup(func() { testHookSubmitted = nil })
	st := e.submit(t, Spec{ChunkSize: 1, Reducers: 1}, strings.Repeat("x\n", 8))
	if adopted == nil {
		t.Fatalf("the sharer did not adopt job %s within %v", st.ID, waitFor)
	}
	if got := e.lookupLocal(st.ID); got != adopted {
		t.Fatalf("Submit replaced the job the sharer adopted (%p) with another (%p): tasks leased into the first are orphaned", adopted, got)
	}
}
