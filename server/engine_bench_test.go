package server_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/worker"
)

// startWorkers runs n native workers with slots each, over real WebSockets,
// each with a runner of its own (as separate processes would have), and
// waits until the server sees them.
func startWorkers(b *testing.B, srv *server.Server, n, slots int) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, n)
	for range n {
		r, err := runner.New(ctx, runner.Config{CacheDir: wasmtest.CacheDir()})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			defer func() { r.Close(context.Background()); done <- struct{}{} }()
			_ = worker.Run(ctx, worker.Options{Server: srv.URL(), Runner: r, Slots: slots, TrustedModules: jobs.SHAs(), Logger: slog.New(slog.DiscardHandler)})
		}()
	}
	b.Cleanup(func() {
		cancel()
		for range n {
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for len(srv.Engine().Workers()) < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d workers connected after 30 s", len(srv.Engine().Workers()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// submitInput submits a job with one input.
func submitInput(b *testing.B, eng *engine.Engine, spec engine.Spec, input string) engine.Status {
	b.Helper()
	in, err := eng.NewInput()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := in.AddFile("input", strings.NewReader(input)); err != nil {
		b.Fatal(err)
	}
	st, err := eng.Submit(context.Background(), spec, in)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// submitAndWait submits a job with one input and waits until it ends.
func submitAndWait(b *testing.B, eng *engine.Engine, spec engine.Spec, input string) engine.Status {
	b.Helper()
	ctx := context.Background()
	st := submitInput(b, eng, spec, input)
	var err error
	for !st.State.Finished() {
		time.Sleep(5 * time.Millisecond)
		if st, err = eng.Job(ctx, st.ID); err != nil {
			b.Fatal(err)
		}
	}
	if st.State != engine.StateDone {
		b.Fatalf("job %s: %s", st.State, st.Error)
	}
	return st
}

// BenchmarkNoopTasks is the platform's own cost per task: b.N no-op map
// tasks (one input line each) through 4 native workers over WebSockets,
// each committed with its lease ack, with --fsync everysec. The metric is
// map tasks committed per second, from the first task handed out to the
// last committed, after a warm-up job in which the workers compile the
// module.
func BenchmarkNoopTasks(b *testing.B) { noopTasks(b, benchServer(b), engine.VerifyAdaptive) }

// noopTasks runs b.N no-op map tasks on srv through 4 native workers,
// verified as verify says, after a warm-up job, and reports tasks/s.
func noopTasks(b *testing.B, srv *server.Server, verify engine.Verify) {
	startWorkers(b, srv, 4, 16)
	// Each worker compiles the module on its first task: do that before
	// the clock starts, with a job of as many tasks as there are slots.
	submitAndWait(b, srv.Engine(), engine.Spec{Module: "noop", ChunkSize: 1, Reducers: 1, Verify: verify}, strings.Repeat("x\n", 64))
	input := strings.Repeat("x\n", b.N)
	b.ResetTimer()
	st := submitAndWait(b, srv.Engine(), engine.Spec{Module: "noop", ChunkSize: 1, Reducers: 1, Verify: verify}, input)
	b.StopTimer()
	if st.Phases[engine.PhaseMap].Done != b.N {
		b.Fatalf("map tasks done %d, want %d", st.Phases[engine.PhaseMap].Done, b.N)
	}
	b.ReportMetric(float64(b.N)/st.MapDone.Sub(*st.Started).Seconds(), "tasks/s")
}

// plainWordcount is what a Go programmer writes without us: split on
// anything but letters and digits, lower-case, count in a map.
func plainWordcount(text string) map[string]int {
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		counts[strings.ToLower(w)]++
	}
	return counts
}

// BenchmarkWordcount256MB is a whole wordcount job over 256 MB of Zipf text
// on 2 native workers (one slot each) against plainWordcount in one
// goroutine on the same bytes, in the same run. The metric is the job's
// makespan (submission to done) over the plain program's time.
func BenchmarkWordcount256MB(b *testing.B) {
	text := string(wasmtest.ZipfText(256 << 20))
	srv := benchServer(b)
	startWorkers(b, srv, 2, 1)
	b.ResetTimer()
	var native, job time.Duration
	for range b.N {
		t0 := time.Now()
		counts := plainWordcount(text)
		native += time.Since(t0)
		t0 = time.Now()
		st := submitAndWait(b, srv.Engine(), engine.Spec{Module: "wordcount", Reducers: 4, ChunkSize: wcChunk}, text)
		job += time.Since(t0)
		if st.Records != int64(len(counts)) {
			b.Fatalf("job output %d words, plain program %d", st.Records, len(counts))
		}
	}
	b.ReportMetric(float64(len(text))/1e6/native.Seconds()*float64(b.N), "native-MB/s")
	b.ReportMetric(float64(len(text))/1e6/job.Seconds()*float64(b.N), "job-MB/s")
	b.ReportMetric(job.Seconds()/native.Seconds(), "makespan-ratio")
}

// wcChunk is the wordcount benchmark's chunk size: 4 MiB, so that each
// task's map-side table folds more of the Zipf vocabulary before the
// worker sorts and partitions it.
const wcChunk = 4 << 20
