package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/worker"
)

// corpus returns deterministic text of about n bytes from a small
// vocabulary, with punctuation and mixed case.
func corpus(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 1))
	words := []string{"alpha", "Beta", "gamma", "delta", "ε", "zeta42", "eta", "theta", "iota", "kappa"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		switch r.IntN(8) {
		case 0:
			b.WriteString(".\n")
		case 1:
			b.WriteString(", ")
		default:
			b.WriteByte(' ')
		}
	}
	b.WriteByte('\n')
	return b.String()
}

// wordcountOracle counts words as the job defines them, written plainly.
func wordcountOracle(text string) map[string]string {
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		counts[strings.ToLower(w)]++
	}
	out := map[string]string{}
	for w, n := range counts {
		out[w] = strconv.Itoa(n)
	}
	return out
}

// runJob submits a job through the engine and waits until it ends.
func runJob(t testing.TB, eng *engine.Engine, spec engine.Spec, input string) engine.Status {
	t.Helper()
	ctx := context.Background()
	in, err := eng.NewInput()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.AddFile("input.txt", strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	st, err := eng.Submit(ctx, spec, in)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return waitJob(t, eng, st.ID)
}

// waitJob waits until a job ends, at most 90 s.
func waitJob(t testing.TB, eng *engine.Engine, id string) engine.Status {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := eng.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State.Finished() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after 90 s: %+v", id, st.State, st.Phases)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jobOutput(t testing.TB, eng *engine.Engine, id string) (map[string]string, []string) {
	t.Helper()
	out := map[string]string{}
	var keys []string
	err := eng.Output(context.Background(), id, func(k, v []byte) error {
		out[string(k)] = string(v)
		keys = append(keys, string(k))
		return nil
	})
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	return out, keys
}

func TestWordcountOnLocalWorkers(t *testing.T) {
	srv := startServer(t, server.Config{LocalWorkers: 2})
	text := corpus(300_000, 7)
	st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 16 << 10, Reducers: 3}, text)
	if st.State != engine.StateDone {
		t.Fatalf("state %s, error %q", st.State, st.Error)
	}
	got, keys := jobOutput(t, srv.Engine(), st.ID)
	want := wordcountOracle(text)
	if !maps.Equal(got, want) {
		t.Errorf("output differs from the oracle:\n got %v\nwant %v", got, want)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("output keys not sorted: %v", keys)
	}
	if m := st.Phases[engine.PhaseMap]; m.Done != m.Total || m.Total < 10 {
		t.Errorf("map phase %+v: want every one of >= 10 tasks done", m)
	}
	if r := st.Phases[engine.PhaseReduce]; r.Done != 3 {
		t.Errorf("reduce phase %+v: want 3 done", r)
	}
	total := 0
	for _, n := range want {
		c, _ := strconv.Atoi(n)
		total += c
	}
	if st.Counters["words"] != int64(total) {
		t.Errorf("counter words = %d, want %d", st.Counters["words"], total)
	}
}

// A streaming job maps every message that arrives on its input queue and
// pushes the pairs onto its output queue until it is cancelled.
func TestStreamingJobMapsArrivingMessages(t *testing.T) {
	srv := startServer(t, server.Config{LocalWorkers: 1})
	eng, b := srv.Engine(), srv.Broker()
	ctx := context.Background()
	st, err := eng.Submit(ctx, engine.Spec{Module: "wordcount", Stream: true, InputQueue: "events", OutputQueue: "events:counts", Verify: engine.VerifyNone}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a b a", "c"} {
		if _, err := b.Push(ctx, "events", []broker.NewMessage{{Value: []byte(m)}}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the output queue held %v", got)
		}
		m, err := b.Take(ctx, st.OutputQueue)
		if errors.Is(err, broker.ErrQueueEmpty) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var kv struct{ Key, Value string }
		if err := json.Unmarshal(m.Value, &kv); err != nil {
			t.Fatalf("output message %q: %v", m.Value, err)
		}
		got[kv.Key] = kv.Value
		if kv.Key == "a" && kv.Value != "2" {
			t.Errorf("a = %s, want 2 (one message, combined)", kv.Value)
		}
	}
	if st, err = eng.Cancel(ctx, st.ID); err != nil || st.State != engine.StateCancelled {
		t.Fatalf("cancel: %v, state %s", err, st.State)
	}
	if info, err := b.Stats(ctx, "events"); err != nil || info.Length != 0 || info.InFlight != 0 {
		t.Errorf("input queue after the stream: %+v, %v; want consumed", info, err)
	}
}

// A job can take its input from a queue: the queue is drained, one record
// per message, in the transaction that creates the job.
func TestJobDrainsAnInputQueue(t *testing.T) {
	srv := startServer(t, server.Config{LocalWorkers: 1})
	ctx := context.Background()
	lines := strings.Split(strings.TrimSpace(corpus(20_000, 3)), "\n")
	msgs := make([]broker.NewMessage, len(lines))
	for i, l := range lines {
		msgs[i].Value = []byte(l)
	}
	if _, err := srv.Broker().Push(ctx, "lines", msgs); err != nil {
		t.Fatal(err)
	}
	st, err := srv.Engine().Submit(ctx, engine.Spec{Module: "wordcount", InputQueue: "lines", ChunkSize: 2048, Reducers: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := srv.Broker().Stats(ctx, "lines"); err != nil || info.Length != 0 || info.InFlight != 0 {
		t.Errorf("input queue after submission: %+v, %v; want drained", info, err)
	}
	st = waitJob(t, srv.Engine(), st.ID)
	if st.State != engine.StateDone {
		t.Fatalf("state %s, error %q", st.State, st.Error)
	}
	got, _ := jobOutput(t, srv.Engine(), st.ID)
	if want := wordcountOracle(strings.Join(lines, "\n")); !maps.Equal(got, want) {
		t.Errorf("output differs from the oracle: got %d keys, want %d", len(got), len(want))
	}
}

// slowTransport delays every frame a worker sends.
type slowTransport struct {
	worker.Transport
	delay time.Duration
}

func (s slowTransport) Send(ctx context.Context, f []byte) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Transport.Send(ctx, f)
}

// Near the end of a phase, an idle worker gets a backup copy of a task a
// slow worker still holds, and the first result wins: the job does not
// wait for the slow worker, and its output is still exact.
func TestBackupCopiesOfSlowTasks(t *testing.T) {
	srv := startServer(t, server.Config{LocalWorkers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = worker.Run(ctx, worker.Options{
			Runner: wasmtest.Runner(t), Slots: 1, Name: "slow", TrustedModules: jobs.SHAs(), Logger: slog.New(slog.DiscardHandler),
			Server: srv.URL(),
			Dial: func(ctx context.Context) (worker.Transport, error) {
				tr, err := worker.DialWebSocket(ctx, srv.URL(), nil)
				return slowTransport{tr, 3 * time.Second}, err
			},
			HandshakeTimeout: 10 * time.Second,
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(20 * time.Second)
	for len(srv.Engine().Workers()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the slow worker did not connect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	text := corpus(40_000, 5)
	start := time.Now()
	st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 4096, Reducers: 1, Verify: engine.VerifyNone}, text)
	took := time.Since(start)
	if st.State != engine.StateDone {
		t.Fatalf("state %s, error %q", st.State, st.Error)
	}
	got, _ := jobOutput(t, srv.Engine(), st.ID)
	if want := wordcountOracle(text); !maps.Equal(got, want) {
		t.Errorf("output differs from the oracle")
	}
	if st.BackupCopies == 0 {
		t.Errorf("no backup copies sent, want some (job took %v)", took)
	}
	if took > 2500*time.Millisecond {
		t.Errorf("job took %v: it waited for the slow worker (3 s per frame)", took)
	}
}

// A partition larger than one task may carry is reduced by several tasks
// in turn, and map runs above the spill size are read from files: the
// output is still exact.
func TestLargePartitionsSpillAndSplit(t *testing.T) {
	srv := startServer(t, server.Config{LocalWorkers: 2, MaxTaskBytes: 32 << 10, SpillBytes: 2 << 10})
	text := corpus(400_000, 9)
	// Many distinct words so that each partition is several tasks' worth.
	var b strings.Builder
	for i := range 6000 {
		fmt.Fprintf(&b, "w%d w%d\n", i, i%97)
	}
	text += b.String()
	st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 4 << 10, Reducers: 2, Verify: engine.VerifyNone}, text)
	if st.State != engine.StateDone {
		t.Fatalf("state %s, error %q", st.State, st.Error)
	}
	got, keys := jobOutput(t, srv.Engine(), st.ID)
	if want := wordcountOracle(text); !maps.Equal(got, want) {
		t.Errorf("output differs from the oracle: %d keys, want %d", len(got), len(want))
	}
	if !slices.IsSorted(keys) {
		t.Error("output keys not sorted")
	}
	if r := st.Phases[engine.PhaseReduce]; r.Done <= 2 {
		t.Errorf("reduce phase %+v: want the 2 partitions split over more tasks", r)
	}
	if st.SpilledRuns == 0 {
		t.Error("no map run was spilled to a file; want some above 2 KiB")
	}
}
