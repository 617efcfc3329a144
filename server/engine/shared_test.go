package engine

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/redisstore"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
	"github.com/tabreduce/tabreduce/wasm/worker"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
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
	store, err := redisstore.Open(context.Background(), url, redisstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return startTestEngine(t, store, Config{Shared: store.Blobs(), Server: server})
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

// connectFrom opens an untrusted session from addr, named name.
func (e *testEngine) connectFrom(t *testing.T, addr, name string) (*fakeWorker, *session) {
	t.Helper()
	serverEnd, workerEnd := worker.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.ServeWorker(context.Background(), serverEnd, Peer{RemoteAddr: addr, UserAgent: "fake"})
	}()
	w := &fakeWorker{t: t, tr: workerEnd}
	t.Cleanup(func() {
		workerEnd.Close("test over")
		<-done
	})
	w.send(&wp.Hello{Protocol: wp.ProtocolVersion, Kind: wp.KindNative, Slots: 1, Name: name})
	if f := w.recv(); f.Type() != wp.TypeWelcome {
		t.Fatalf("first frame %s, want WELCOME", f.Type())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.sessions {
		if s.hello.Name == name {
			return w, s
		}
	}
	t.Fatalf("no session named %s", name)
	return nil, nil
}

// TestCatchesAreShared: a worker caught on A taints its network on B too,
// for B's workers already connected and for those that come; its address's
// catch counts on B, where a second catch then refuses the address.
func TestCatchesAreShared(t *testing.T) {
	url := startRedis(t)
	a, b := newSharedEngine(t, url, "A"), newSharedEngine(t, url, "B")
	const net = "10.1.1.0/24"
	_, early := b.connectFrom(t, "10.1.1.9", "early")
	_, cheat := a.connectFrom(t, "10.1.1.4", "cheat")
	a.flag(context.Background(), cheat, "a test's forged result", map[*job]bool{})
	deadline := time.Now().Add(waitFor)
	for {
		b.mu.Lock()
		tainted := b.taintedLocked(early)
		b.mu.Unlock()
		if tainted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B never saw %s tainted by the catch on A (its worker there stays sampled)", net)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The same address comes to B under another name: let in (one catch),
	// caught there: the address's second catch in the service.
	_, again := b.connectFrom(t, "10.1.1.4", "again")
	b.mu.Lock()
	if n := b.caughtAt["10.1.1.4"]; n != 1 {
		t.Errorf("B counts %d catches at the address, want the one A made", n)
	}
	b.mu.Unlock()
	b.flag(context.Background(), again, "a test's forged result", map[*job]bool{})
	// A, which caught only the first, refuses the address now.
	serverEnd, workerEnd := worker.Pipe()
	defer workerEnd.Close("test over")
	errc := make(chan error, 1)
	go func() {
		errc <- a.ServeWorker(context.Background(), serverEnd, Peer{RemoteAddr: "10.1.1.4", UserAgent: "fake"})
	}()
	w := &fakeWorker{t: t, tr: workerEnd}
	w.send(&wp.Hello{Protocol: wp.ProtocolVersion, Kind: wp.KindNative, Slots: 1, Name: "third"})
	if err := <-errc; !errors.Is(err, errRefused) {
		t.Fatalf("A took a third name from an address caught on A and on B: %v", err)
	}
}
