package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/worker"
)

// runWorkers starts native workers over real WebSockets; faulty[i] is the
// share of worker i's results it corrupts (a testing option).
func runWorkers(t *testing.T, srv *server.Server, faulty []float64) {
	t.Helper()
	runNamedWorkers(t, srv, "w", faulty)
}

// runNamedWorkers is runWorkers for workers named prefix0, prefix1, ...: it
// returns once they are connected, beside any connected before.
func runNamedWorkers(t *testing.T, srv *server.Server, prefix string, faulty []float64) {
	t.Helper()
	before := len(srv.Engine().Workers())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, len(faulty))
	for i, f := range faulty {
		opts := worker.Options{
			Server: srv.URL(), Runner: wasmtest.Runner(t), Slots: 1, Name: fmt.Sprintf("%s%d", prefix, i),
			Faulty: f, FaultySeed: uint64(i + 1), MaxBackoff: 200 * time.Millisecond,
			TrustedModules: jobs.SHAs(), Logger: slog.New(slog.DiscardHandler),
		}
		go func() {
			defer func() { done <- struct{}{} }()
			_ = worker.Run(ctx, opts)
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range faulty {
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for len(srv.Engine().Workers()) < before+len(faulty) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d workers connected", len(srv.Engine().Workers())-before, len(faulty))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestVerificationCatchesAFaultyWorker(t *testing.T) {
	cases := []struct {
		name   string
		verify engine.Verify
		faulty []float64
	}{
		{"adaptive", engine.VerifyAdaptive, []float64{0, 0, 0, 0.5}},
		{"replicate", engine.VerifyReplicate, []float64{0, 0, 1}},
		{"spotcheck", engine.VerifySpotcheck, []float64{0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startServer(t, server.Config{})
			runWorkers(t, srv.Server, c.faulty)
			text := corpus(200_000, 11)
			chunk := int64(2 << 10)
			if c.verify == engine.VerifySpotcheck {
				chunk = 512 // many tasks: a 10 % sample must meet the cheater
			}
			st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: chunk, Reducers: 2, Verify: c.verify}, text)
			if st.State != engine.StateDone {
				t.Fatalf("state %s, error %q", st.State, st.Error)
			}
			got, _ := jobOutput(t, srv.Engine(), st.ID)
			if want := wordcountOracle(text); !maps.Equal(got, want) {
				t.Errorf("output differs from the oracle (%d keys, want %d)", len(got), len(want))
			}
			flagged := map[string]bool{}
			for _, w := range srv.Engine().Workers() {
				if w.Flagged {
					flagged[w.Name] = true
				}
			}
			for i, f := range c.faulty {
				name := fmt.Sprintf("w%d", i)
				if f > 0 && !flagged[name] {
					t.Errorf("faulty worker %s not flagged; verification %+v", name, st.Verification)
				}
				if f == 0 && flagged[name] {
					t.Errorf("honest worker %s flagged", name)
				}
			}
			if st.Verification.Mismatches == 0 {
				t.Errorf("verification %+v: want mismatches counted", st.Verification)
			}
			// Every worker here is on 127.0.0.1: agreements rest on distinct
			// sessions of one network, and the counts say so.
			if c.verify == engine.VerifyReplicate && st.Verification.SameNetwork == 0 {
				t.Errorf("verification %+v: want same_network agreements counted", st.Verification)
			}
		})
	}
}
