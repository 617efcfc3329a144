package engine

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/redisstore"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// startRedis starts a real redis-server for the test and returns its URL
// (prefix "engine").
func startRedis(t *testing.T) string {
	t.Helper()
	rs, err := redistest.Start(t.TempDir(), redistest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	return rs.URL("engine")
}

// newSharedEngine starts an engine in shared mode, named server, on the
// Redis at url.
func newSharedEngine(t *testing.T, url, server string) *testEngine {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	store, err := redisstore.Open(context.Background(), url, redisstore.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(context.Background(), store, broker.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: t.TempDir(), Logger: log, HeartbeatInterval: time.Hour, Shared: store.Blobs(), Server: server,
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
	e := newSharedEngine(t, startRedis(t), "A")
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

// TestCancelRacingThePhaseChange cancels a job on server B just as its
// coordinator, A, has made its last check of the job's record and moves
// it from map to reduce: the cancel stands, on A, on B and in the store.
func TestCancelRacingThePhaseChange(t *testing.T) {
	url := startRedis(t)
	a, b := newSharedEngine(t, url, "A"), newSharedEngine(t, url, "B")
	var raced atomic.Bool
	testHookMoveOn = func(e *Engine, id string) {
		if e != a.Engine || raced.Swap(true) {
			return
		}
		if _, err := b.Cancel(context.Background(), id); err != nil {
			t.Errorf("cancel on B: %v", err)
		}
	}
	t.Cleanup(func() { testHookMoveOn = nil })
	st := a.submit(t, Spec{Reducers: 1, ChunkSize: 2}, "a\nb\n")
	w := a.connect(t, 2, true)
	got := w.serve(a, st.ID, nil, noopAnswer(1))
	if !raced.Load() {
		t.Fatal("the coordinator never moved the job on")
	}
	if got.State != StateCancelled {
		t.Fatalf("A shows the job %s, want cancelled: B cancelled it as A moved it on", got.State)
	}
	v, err := a.q.RecordGet(context.Background(), jobKey(st.ID))
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := decodeJobRecord(broker.Record{Key: jobKey(st.ID), Value: v}); err != nil || rec.State != StateCancelled {
		t.Fatalf("the store says %s (%v), want cancelled", rec.State, err)
	}
	if st, err := b.Job(context.Background(), st.ID); err != nil || st.State != StateCancelled {
		t.Fatalf("B shows the job %s (%v), want cancelled", st.State, err)
	}
}
