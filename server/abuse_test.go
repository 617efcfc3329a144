package server_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/worker"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// liar is an anonymous worker that declares 65,535 slots and answers every
// task it is sent with a failure of the job's module. It returns the
// worker's id once WELCOME came.
func liar(t *testing.T, srv *server.Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr, err := worker.DialWebSocket(ctx, srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); tr.Close("bye"); <-done })
	hello := &wp.Hello{Protocol: wp.ProtocolVersion, Kind: wp.KindNative, Slots: 65535, UserAgent: "liar", Name: "liar"}
	if err := tr.Send(ctx, wp.Encode(hello)); err != nil {
		t.Fatal(err)
	}
	b, err := tr.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := wp.Decode(b)
	w, ok := f.(*wp.Welcome)
	if err != nil || !ok {
		t.Fatalf("want WELCOME, got %v %v", f, err)
	}
	go func() {
		defer close(done)
		for {
			b, err := tr.Recv(ctx)
			if err != nil {
				return
			}
			ts, ok := mustDecode(b).(*wp.Tasks)
			if !ok {
				continue
			}
			var fs wp.Failures
			for _, task := range ts.Tasks {
				fs.Failures = append(fs.Failures, wp.Failure{TaskID: task.ID, Kind: wp.FailureJob, Message: "forged: the module trapped"})
			}
			if tr.Send(ctx, wp.Encode(&fs)) != nil {
				return
			}
		}
	}()
	return w.WorkerID
}

func mustDecode(b []byte) wp.Frame {
	f, _ := wp.Decode(b)
	return f
}

// One anonymous worker cannot fail every job: the server believes 16 of
// its 65,535 slots, its failures count only once the server's own run
// confirms them (here it never does: the job finishes on the trusted
// workers and the server), and a worker whose failures the server keeps
// contradicting is throttled, then refused.
func TestAnonymousFailuresDoNotFailJobs(t *testing.T) {
	srv := startServer(t, server.Config{LocalWorkers: 2})
	id := liar(t, srv.Server)
	var info engine.WorkerInfo
	for _, w := range srv.Engine().Workers() {
		if w.ID == id {
			info = w
		}
	}
	if info.Slots != engine.DefaultMaxWorkerSlots {
		t.Errorf("the server believes %d of the liar's 65535 slots, want %d", info.Slots, engine.DefaultMaxWorkerSlots)
	}
	text := corpus(100_000, 51)
	st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 1 << 10, Reducers: 2}, text)
	if st.State != engine.StateDone {
		t.Fatalf("state %s, error %q", st.State, st.Error)
	}
	if got, _ := jobOutput(t, srv.Engine(), st.ID); !maps.Equal(got, wordcountOracle(text)) {
		t.Errorf("output differs from the oracle")
	}
	if st.Verification.FailureChecks == 0 {
		t.Errorf("verification %+v: want the liar's failures checked by the server", st.Verification)
	}
	eventually(t, "the liar is refused", func() bool {
		for _, w := range srv.Engine().Workers() {
			if w.ID == id {
				return w.Flagged && w.Standing.Contradicted >= 6
			}
		}
		return false
	})
}

// A module that really traps still fails its job within seconds on
// untrusted workers alone: the server's own run confirms the failure, and
// the workers that reported it are not held to have lied.
func TestTrapOnUntrustedWorkersFailsFast(t *testing.T) {
	srv := startServer(t, server.Config{})
	colluderPool(t, srv.Server, 2, 0)
	sha := srv.upload(wasmtest.Module(t, "github.com/tabreduce/tabreduce/static/testdata/trap"))
	start := time.Now()
	st := runJob(t, srv.Engine(), engine.Spec{Module: sha, ChunkSize: 1 << 10, Reducers: 1}, strings.Repeat("divide by zero\n", 500))
	if st.State != engine.StateFailed || !strings.Contains(st.Error, "divide") {
		t.Fatalf("state %s, error %q: want failed with the module's panic", st.State, st.Error)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the job took %v to fail", took)
	}
	for _, w := range srv.Engine().Workers() {
		if w.Standing.Contradicted > 0 || w.Standing.Throttled || w.Flagged {
			t.Errorf("worker %s held to have lied about a real failure: %+v", w.Name, w.Standing)
		}
	}
}
