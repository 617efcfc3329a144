package server_test

import (
	"context"
	"fmt"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
)

// Colluder benchmarks: pools of one-slot untrusted workers on two /24s,
// with sybils that forge every result alike (collusion_test.go), under
// replicate and adaptive. Each sub-benchmark runs colluderBenchJobs
// wordcount jobs in a row on a fresh server and pool; the pool without
// colluders, same size, same jobs, is the baseline of the same run.
//
// Metrics:
//   - oracle_pct: jobs whose output equals the oracle, in percent;
//   - compute_x: the work done (every result workers sent, and every run
//     of the server's own) over the jobs' own tasks (map and reduce): 1.0
//     would be no verification at all;
//   - tasks_to_ban: tasks the engine committed until the last colluder
//     was flagged (-1: some never were);
//   - sybil_results: results the colluders sent before they were refused.
const colluderBenchJobs = 5

func BenchmarkColluders(b *testing.B) {
	pools := []struct {
		name              string
		honest, colluders int
	}{
		{"10pct", 18, 2},
		{"30pct", 12, 5},
	}
	for _, mode := range []engine.Verify{engine.VerifyReplicate, engine.VerifyAdaptive} {
		for _, p := range pools {
			for _, sybils := range []int{0, p.colluders} {
				name := fmt.Sprintf("%s/%s/sybils=%d", mode, p.name, sybils)
				b.Run(name, func(b *testing.B) {
					for range b.N {
						colluderRound(b, mode, p.honest+p.colluders-sybils, sybils)
					}
				})
			}
		}
	}
}

// colluderRound runs one round: a fresh server and pool, the jobs, the
// metrics.
func colluderRound(b *testing.B, mode engine.Verify, honest, sybils int) {
	srv, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: b.TempDir(), Fsync: "never", Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ms := colluderPool(b, srv, honest, sybils)
	defer func() {
		for _, m := range ms {
			m.stop()
		}
	}()
	var banAt atomic.Int64
	banAt.Store(-1)
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if f := flaggedNames(srv); sybils > 0 && countSybils(ms, f) == sybils {
				banAt.Store(srv.Engine().Totals().TasksDone)
				return
			}
		}
	}()
	b.ResetTimer()
	good, own, serverRuns := 0, int64(0), int64(0)
	for i := range colluderBenchJobs {
		text := corpus(60_000, uint64(100+i))
		st := runJob(b, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 2 << 10, Reducers: 2, Verify: mode}, text)
		if st.State != engine.StateDone {
			b.Fatalf("job %d: %s %q", i, st.State, st.Error)
		}
		if got, _ := jobOutput(b, srv.Engine(), st.ID); maps.Equal(got, wordcountOracle(text)) {
			good++
		}
		own += int64(st.Phases[engine.PhaseMap].Total + st.Phases[engine.PhaseReduce].Total)
		v := st.Verification
		serverRuns += v.SpotChecks + v.Audits + v.FailureChecks
	}
	b.StopTimer()
	close(stopWatch)
	<-watched
	var sent, sybilSent int64
	for _, m := range ms {
		sent += m.results.Load()
		if m.colluder {
			sybilSent += m.results.Load()
		}
	}
	b.ReportMetric(100*float64(good)/colluderBenchJobs, "oracle_pct")
	b.ReportMetric(float64(sent+serverRuns)/float64(own), "compute_x")
	if sybils > 0 {
		b.ReportMetric(float64(banAt.Load()), "tasks_to_ban")
		b.ReportMetric(float64(sybilSent), "sybil_results")
	}
}

// countSybils counts the colluders among the flagged.
func countSybils(ms []*poolMember, flagged map[string]bool) int {
	n := 0
	for _, m := range ms {
		if m.colluder && flagged[m.name] {
			n++
		}
	}
	return n
}
