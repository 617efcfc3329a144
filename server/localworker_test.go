package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
)

// The in-process worker's session lives as long as the server, not as long
// as the handshake's time-out: a task that runs many times longer than the
// time-out finishes on the worker that was there before the job.
func TestLocalWorkerOutlivesItsHandshake(t *testing.T) {
	restore := server.SetLocalHandshakeTimeout(100 * time.Millisecond)
	t.Cleanup(restore)
	srv := startServer(t, server.Config{LocalWorkers: 1})
	eng := srv.Engine()
	before := localWorker(t, eng)
	ctx := context.Background()
	in, err := eng.NewInput()
	if err != nil {
		t.Fatal(err)
	}
	// One task of about a second (several on a loaded machine): ten
	// handshake time-outs at least.
	if _, err := in.AddFile("ranges", strings.NewReader("1 10000000\n")); err != nil {
		t.Fatal(err)
	}
	st, err := eng.Submit(ctx, engine.Spec{Module: "primes", Reducers: 1}, in)
	if err != nil {
		t.Fatal(err)
	}
	st = waitJob(t, eng, st.ID)
	if st.State != engine.StateDone {
		t.Fatalf("job %s: %s %q", st.ID, st.State, st.Error)
	}
	out, _ := jobOutput(t, eng, st.ID)
	if out["1-10000000"] != "664579" {
		t.Errorf("primes below 10,000,001: got %q, want 664579", out["1-10000000"])
	}
	after := localWorker(t, eng)
	if after.ID != before.ID || after.TasksDone < 1 {
		t.Errorf("local worker was %s, is %s with %d tasks done: want the same worker, which ran the task", before.ID, after.ID, after.TasksDone)
	}
}

// localWorker waits for the in-process worker and returns it.
func localWorker(t *testing.T, eng *engine.Engine) engine.WorkerInfo {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		for _, w := range eng.Workers() {
			if w.Kind == "local" {
				return w
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no local worker connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
