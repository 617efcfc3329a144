package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/worker"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// Verification benchmarks: what adaptive verification costs an honest pool,
// and how soon it catches a cheat. Workers are native, in-process but over
// real WebSockets with a runner each and no token: untrusted, as
// volunteers are.

// Shape of the verification benchmarks' jobs: wordcount over Zipf text in
// 1 KiB chunks.
const (
	verifyBenchTasks = 200
	verifyBenchChunk = 1 << 10
	// detectWait bounds one wait for a cheat to be flagged.
	detectWait = 60 * time.Second
)

// benchWorker is one worker run for a benchmark iteration.
type benchWorker struct {
	name    string
	results atomic.Int64 // results sent to the server, every session
	cancel  context.CancelFunc
	done    chan struct{}
}

// startBenchWorker runs an untrusted native worker with one slot; faulty
// makes it a cheat (worker.Options.Faulty) with a fixed seed.
func startBenchWorker(b *testing.B, srv *server.Server, name string, faulty float64, seed uint64) *benchWorker {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := runner.New(ctx, runner.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		b.Fatal(err)
	}
	w := &benchWorker{name: name, cancel: cancel, done: make(chan struct{})}
	dial := func(ctx context.Context) (worker.Transport, error) {
		t, err := worker.DialWebSocket(ctx, srv.URL(), nil)
		return &countingTransport{Transport: t, results: &w.results}, err
	}
	go func() {
		defer func() { r.Close(context.Background()); close(w.done) }()
		_ = worker.Run(ctx, worker.Options{Server: srv.URL(), Dial: dial, Runner: r, Slots: 1, Name: name,
			Faulty: faulty, FaultySeed: seed, TrustedModules: jobs.SHAs(), Logger: slog.New(slog.DiscardHandler)})
	}()
	return w
}

func (w *benchWorker) stop() { w.cancel(); <-w.done }

// countingTransport counts the results a worker sends.
type countingTransport struct {
	worker.Transport
	results *atomic.Int64
}

func (c *countingTransport) Send(ctx context.Context, frame []byte) error {
	if f, err := workerproto.Decode(frame); err == nil {
		if rs, ok := f.(*workerproto.Results); ok {
			c.results.Add(int64(len(rs.Results)))
		}
	}
	return c.Transport.Send(ctx, frame)
}

// benchPool starts a fresh server and workers named names (cheat is the
// one index, or -1, that is faulty), waits until all are connected and
// returns the server and a function that stops everything.
func benchPool(b *testing.B, names []string, cheat int, faulty float64, seed uint64) (*server.Server, []*benchWorker, func()) {
	b.Helper()
	srv, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: b.TempDir(), Fsync: "never", Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	ws := make([]*benchWorker, len(names))
	for i, name := range names {
		f := 0.0
		if i == cheat {
			f = faulty
		}
		ws[i] = startBenchWorker(b, srv, name, f, seed)
	}
	stop := func() {
		for _, w := range ws {
			w.stop()
		}
		srv.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(srv.Engine().Workers()) < len(names) {
		if time.Now().After(deadline) {
			stop()
			b.Fatalf("%d of %d workers connected after 30 s", len(srv.Engine().Workers()), len(names))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return srv, ws, stop
}

// verifySpec is the benchmarks' job: wordcount, verified adaptively.
var verifySpec = engine.Spec{Module: "wordcount", Reducers: 2, ChunkSize: verifyBenchChunk, Verify: engine.VerifyAdaptive}

// verifyShare is the extra tasks a job ran to verify results (replicas,
// probes and the server's spot checks) as a share of the job's own tasks
// (map and reduce), in percent.
func verifyShare(st engine.Status) float64 {
	v := st.Verification
	own := st.Phases[engine.PhaseMap].Total + st.Phases[engine.PhaseReduce].Total
	return 100 * float64(v.Replicas+v.Probes+v.SpotChecks) / float64(own)
}

// BenchmarkVerifyOverhead: four honest untrusted workers run two wordcount
// jobs of verifyBenchTasks map tasks in a row under adaptive verification.
// The first meets them on probation; the second, once they have standing.
// Metrics: the verification work of each job as a percentage of its tasks
// (job1-verify-%, job2-verify-%), means over the iterations, each iteration
// on a fresh server.
func BenchmarkVerifyOverhead(b *testing.B) {
	input := string(wasmtest.ZipfText(verifyBenchTasks * verifyBenchChunk))
	var share [2]float64
	for i := range b.N {
		srv, _, stop := benchPool(b, []string{"w1", "w2", "w3", "w4"}, -1, 0, 0)
		for j := range share {
			st := submitAndWait(b, srv.Engine(), verifySpec, input)
			share[j] += verifyShare(st)
			if st.Verification.Mismatches != 0 {
				b.Errorf("iteration %d, job %d: %d mismatches among honest workers, want none: %+v", i, j+1, st.Verification.Mismatches, st.Verification)
			}
		}
		for _, w := range srv.Engine().Workers() {
			if w.Flagged {
				b.Errorf("honest worker %s flagged", w.Name)
			}
		}
		stop()
	}
	b.ReportMetric(share[0]/float64(b.N), "job1-verify-%")
	b.ReportMetric(share[1]/float64(b.N), "job2-verify-%")
}

// BenchmarkDetectCheat: three honest workers and one that corrupts a
// fraction of its results (worker.Options.Faulty, seeded by the iteration)
// join a fresh server and run one adaptive wordcount job; the wait ends when
// the cheat is flagged. Metrics, means over the iterations where it was:
// tasks-to-flag, the results the cheat had sent by then (it keeps working
// while a check of its result runs), and checks-to-flag, how many of them
// had been checked (its standing's agreed + disagreed); and caught-%, the
// iterations where it was flagged before the job ended.
func BenchmarkDetectCheat(b *testing.B) {
	input := string(wasmtest.ZipfText(2 * verifyBenchTasks * verifyBenchChunk))
	for _, fraction := range []float64{0.1, 0.5, 1} {
		b.Run(fmt.Sprintf("faulty=%g", fraction), func(b *testing.B) {
			var sent, checked, caught int64
			for i := range b.N {
				srv, ws, stop := benchPool(b, []string{"h1", "h2", "h3", "cheat"}, 3, fraction, uint64(i+1))
				if info, n, ok := timeToFlag(b, srv.Engine(), input, ws[3]); ok {
					sent += n
					checked += info.Standing.Agreed + info.Standing.Disagreed
					caught++
				}
				stop()
			}
			if caught > 0 {
				b.ReportMetric(float64(sent)/float64(caught), "tasks-to-flag")
				b.ReportMetric(float64(checked)/float64(caught), "checks-to-flag")
			}
			b.ReportMetric(100*float64(caught)/float64(b.N), "caught-%")
		})
	}
}

// timeToFlag submits a job and waits until cheat is flagged (and returns
// its entry in the worker list and the results it had sent) or the job ends
// without that.
func timeToFlag(b *testing.B, eng *engine.Engine, input string, cheat *benchWorker) (info engine.WorkerInfo, sent int64, flagged bool) {
	b.Helper()
	ctx := context.Background()
	st := submitInput(b, eng, verifySpec, input)
	var err error
	deadline := time.Now().Add(detectWait)
	for time.Now().Before(deadline) {
		for _, w := range eng.Workers() {
			if w.Name == cheat.name && w.Flagged {
				return w, cheat.results.Load(), true
			}
		}
		if st, err = eng.Job(ctx, st.ID); err != nil {
			b.Fatal(err)
		}
		if st.State.Finished() {
			return engine.WorkerInfo{}, 0, false
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("job %s neither done nor the cheat flagged after %v", st.ID, detectWait)
	return engine.WorkerInfo{}, 0, false
}
