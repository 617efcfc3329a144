package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/buntstore"
	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/worker"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// The engine's own tests: a real broker on a real buntdb file, the real
// module registry, and workers played by the test over an in-memory
// transport, frame by frame, so that every answer a worker could give
// (right, wrong, late, malformed, none) can be given on purpose.

// waitFor bounds every wait of these tests.
const waitFor = 20 * time.Second

// testEngine is an engine and the broker it runs on.
type testEngine struct {
	*Engine
	b *broker.Broker
}

// newTestEngine starts an engine with cfg (its data directory, logger and
// built-in noop filled in) on a fresh store.
func newTestEngine(t *testing.T, cfg Config) *testEngine {
	t.Helper()
	dir := t.TempDir()
	store, err := buntstore.Open(dir, buntstore.Options{Fsync: buntstore.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	return startTestEngine(t, store, cfg)
}

// startTestEngine starts an engine with cfg on store, which it closes at the
// end of the test: it fills in the logger, the built-in noop, a data
// directory if cfg has none, and an hour's heartbeat interval if cfg has
// none (the fake workers send none).
func startTestEngine(t *testing.T, store broker.Store, cfg Config) *testEngine {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	b, err := broker.New(context.Background(), store, broker.Config{}, log)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	cfg.Logger = log
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = time.Hour
	}
	cfg.Builtins = map[string][]byte{"noop": wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/noop")}
	e, err := New(context.Background(), cfg, b.Internal(), wasmtest.Runner(t))
	if err != nil {
		b.Close()
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		b.Close()
		store.Close()
	})
	return &testEngine{Engine: e, b: b}
}

// submit submits a noop job over input with spec's other settings.
func (e *testEngine) submit(t *testing.T, spec Spec, input string) Status {
	t.Helper()
	in, err := e.NewInput()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.AddFile("in", strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	spec.Module, spec.Verify = "noop", VerifyNone
	st, err := e.Submit(context.Background(), spec, in)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wait waits until job id is finished.
func (e *testEngine) wait(t *testing.T, id string) Status {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		st, err := e.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State.Finished() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %v: %+v", id, st.State, waitFor, st.Phases)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// output returns a done job's output pairs in order, as "key=value".
func (e *testEngine) output(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	err := e.Output(context.Background(), id, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fakeWorker is a worker the test plays: it sees every frame the engine
// sends and answers as the test decides.
type fakeWorker struct {
	t  *testing.T
	tr worker.Transport
}

// connect opens a session with slots slots; trusted workers' results are
// never verified.
func (e *testEngine) connect(t *testing.T, slots int, trusted bool) *fakeWorker {
	t.Helper()
	serverEnd, workerEnd := worker.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.ServeWorker(context.Background(), serverEnd, Peer{RemoteAddr: "test", UserAgent: "fake", Trusted: trusted})
	}()
	w := &fakeWorker{t: t, tr: workerEnd}
	t.Cleanup(func() {
		workerEnd.Close("test over")
		<-done
	})
	w.send(&wp.Hello{Protocol: wp.ProtocolVersion, Kind: wp.KindNative, Slots: uint16(slots), Name: "fake"})
	if f := w.recv(); f.Type() != wp.TypeWelcome {
		t.Fatalf("first frame %s, want WELCOME", f.Type())
	}
	return w
}

func (w *fakeWorker) send(f wp.Frame) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := w.tr.Send(ctx, wp.Encode(f)); err != nil {
		w.t.Fatalf("send %s: %v", f.Type(), err)
	}
}

// recvFrame returns the next frame's bytes; ok is false when the session
// ended.
func (w *fakeWorker) recvFrame() ([]byte, bool) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	b, err := w.tr.Recv(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		w.t.Fatalf("no frame from the engine in %v", waitFor)
	}
	return b, err == nil
}

func (w *fakeWorker) recv() wp.Frame {
	w.t.Helper()
	b, ok := w.recvFrame()
	if !ok {
		w.t.Fatal("the engine ended the session")
	}
	f, err := wp.DecodeLimit(b, 1<<30)
	if err != nil {
		w.t.Fatalf("a frame the worker cannot decode: %v", err)
	}
	return f
}

// tasks returns the tasks of the next TASKS frame (skipping CANCELs).
func (w *fakeWorker) tasks() []wp.Task {
	w.t.Helper()
	for {
		if f, ok := w.recv().(*wp.Tasks); ok {
			return f.Tasks
		}
	}
}

// serve answers every task of the job with answer until the job ends; a
// task of another job is ignored. check sees every frame's bytes first.
func (w *fakeWorker) serve(e *testEngine, id string, check func([]byte), answer func(wp.Task) [][]byte) Status {
	w.t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if st, err := e.Job(context.Background(), id); err == nil && st.State.Finished() {
			return st
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		b, err := w.tr.Recv(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			w.t.Fatalf("the engine ended the session: %v", err)
		}
		if check != nil {
			check(b)
		}
		f, err := wp.DecodeLimit(b, 1<<30)
		if err != nil {
			w.t.Fatalf("a frame the worker cannot decode: %v", err)
		}
		ts, ok := f.(*wp.Tasks)
		if !ok {
			continue
		}
		for _, tk := range ts.Tasks {
			if tk.Job == id {
				w.answer(tk, answer(tk))
			}
		}
	}
	w.t.Fatalf("job %s not finished after %v", id, waitFor)
	return Status{}
}

// noopAnswer answers as the noop job would: nothing in every partition.
func noopAnswer(r int) func(wp.Task) [][]byte {
	return func(tk wp.Task) [][]byte {
		if tk.Phase == wp.PhaseMap {
			return emptyMap(r)
		}
		return [][]byte{nil}
	}
}

// answer runs a task as reduce would for a job that counts values, and map
// as noop does (nothing), and sends the result.
func (w *fakeWorker) answer(t wp.Task, parts [][]byte) {
	w.send(&wp.Results{Results: []wp.Result{{TaskID: t.ID, Elapsed: time.Millisecond, Partitions: parts}}})
}

// emptyMap is a map result with no pairs in any of R partitions.
func emptyMap(r int) [][]byte { return make([][]byte, r) }

// A job runs to its end on a worker the test plays, and its output is the
// reduce results merged in key order.
func TestJobOnAFakeWorker(t *testing.T) {
	e := newTestEngine(t, Config{})
	st := e.submit(t, Spec{Reducers: 2, ChunkSize: 2}, "a\nb\nc\n")
	w := e.connect(t, 4, true)
	maps := 0
	got := w.serve(e, st.ID, nil, func(tk wp.Task) [][]byte {
		if tk.Phase == wp.PhaseMap {
			maps++
			return emptyMap(2)
		}
		if maps != 3 {
			t.Errorf("a reduce task after %d of 3 map tasks", maps)
		}
		return [][]byte{abi.AppendPair(nil, []byte(fmt.Sprint("k", tk.ID)), []byte("v"))}
	})
	if got.State != StateDone {
		t.Fatalf("state %s, error %q", got.State, got.Error)
	}
	if out := e.output(t, st.ID); len(out) != 2 || !slices.IsSorted(out) {
		t.Errorf("output %q, want the two reduce results in order", out)
	}
}

// A task message that lies about its chunk (the attack: a forged message
// {"f":0,"o":0,"n":-1,"g":0} in a job's map queue) fails the job with a
// clear error; the engine goes on and runs the next job.
func TestForgedTaskMessageFailsTheJob(t *testing.T) {
	e := newTestEngine(t, Config{})
	st := e.submit(t, Spec{Reducers: 1}, "a\n")
	h := e.b.Internal()
	for _, bad := range []string{`{"f":0,"o":0,"n":-1,"g":0}`, `{"f":7,"o":0,"n":1,"g":0}`, `{"f":0,"o":1,"n":1,"g":0,"x":1}`, `not json`} {
		if _, err := h.Push(context.Background(), mapQueue(st.ID), []broker.NewMessage{{Value: []byte(bad)}}); err != nil {
			t.Fatal(err)
		}
	}
	w := e.connect(t, 8, true)
	got := e.wait(t, st.ID)
	if got.State != StateFailed || !strings.Contains(got.Error, "map task") {
		t.Fatalf("state %s, error %q; want failed over a map task message", got.State, got.Error)
	}
	// The worker still serves the next job.
	next := e.submit(t, Spec{Reducers: 1}, "b\n")
	if got := w.serve(e, next.ID, nil, noopAnswer(1)); got.State != StateDone {
		t.Errorf("the next job: %s %q", got.State, got.Error)
	}
}

// A panic while the engine handles one job fails that job only.
func TestPanicFailsOnlyItsJob(t *testing.T) {
	e := newTestEngine(t, Config{})
	doomed := e.submit(t, Spec{Reducers: 1}, "a\n")
	testHookReadInput = func(t *task) {
		if t.job.rec.ID == doomed.ID {
			var m map[string]int
			m["boom"]++ // a nil map: panics
		}
	}
	t.Cleanup(func() { testHookReadInput = nil })
	w := e.connect(t, 2, true)
	got := e.wait(t, doomed.ID)
	if got.State != StateFailed || !strings.Contains(got.Error, "internal error") {
		t.Fatalf("state %s, error %q; want failed with an internal error", got.State, got.Error)
	}
	next := e.submit(t, Spec{Reducers: 1}, "b\n")
	if got := w.serve(e, next.ID, nil, noopAnswer(1)); got.State != StateDone {
		t.Errorf("the next job: %s %q", got.State, got.Error)
	}
}

// mapPairs is a map result for R=1 of the given keys, one value each.
func mapPairs(keys ...string) [][]byte {
	slices.Sort(keys)
	var s []byte
	for _, k := range keys {
		s = abi.AppendPair(s, []byte(k), []byte("1"))
	}
	return [][]byte{s}
}

// countGroups is what a reduce that counts each key's values returns.
func countGroups(t *testing.T, groups []byte) []byte {
	t.Helper()
	gs, err := abi.DecodeGroups(groups)
	if err != nil {
		t.Fatalf("reduce input: %v", err)
	}
	var out []byte
	for _, g := range gs {
		out = abi.AppendPair(out, g.Key, []byte(fmt.Sprint(len(g.Values))))
	}
	return out
}

// No frame is larger than the worker reads, and a partition larger than a
// task is reduced by follow-ups that start where the last one stopped:
// every key is reduced exactly once, with all its values.
func TestFramesFitAndFollowUpsResume(t *testing.T) {
	const frameLimit = 8 << 10
	e := newTestEngine(t, Config{MaxTaskBytes: 64 << 10, WorkerFrameBytes: frameLimit, SpillBytes: 512})
	const maps, keys = 20, 400
	var input strings.Builder
	for i := range maps {
		fmt.Fprintf(&input, "line %d\n", i)
	}
	st := e.submit(t, Spec{Reducers: 1, ChunkSize: 1}, input.String())
	w := e.connect(t, 16, true)
	want := map[string]int{}
	reduced := map[string]string{}
	check := func(b []byte) {
		if len(b) > frameLimit {
			t.Fatalf("a %d-byte frame, more than the worker's %d", len(b), frameLimit)
		}
	}
	st = w.serve(e, st.ID, check, func(tk wp.Task) [][]byte {
		if tk.Phase == wp.PhaseMap {
			// Each map task emits a share of the keys, overlapping.
			var ks []string
			for k := int(tk.Offset) % 7; k < keys; k += 3 {
				ks = append(ks, fmt.Sprintf("key-%04d-%s", k, strings.Repeat("x", 20)))
			}
			for _, k := range ks {
				want[k]++
			}
			return mapPairs(ks...)
		}
		res := countGroups(t, tk.Input)
		pr := abi.NewPairReader(res)
		for k, v, ok := pr.Next(); ok; k, v, ok = pr.Next() {
			if _, dup := reduced[string(k)]; dup {
				t.Errorf("key %s reduced twice", k)
			}
			reduced[string(k)] = string(v)
		}
		return [][]byte{res}
	})
	if st.Phases[PhaseReduce].Done < 3 {
		t.Errorf("%d reduce tasks, want the partition split over several", st.Phases[PhaseReduce].Done)
	}
	// Each follow-up starts where the last task stopped: the merges read
	// every pair once, and again only the pairs of the key a full task
	// left out (at most one per run and follow-up).
	total := 0
	for _, n := range want {
		total += n
	}
	if read, most := e.mergedPairs.Load(), total+(st.Phases[PhaseReduce].Done-1)*maps; read < int64(total) || read > int64(most) {
		t.Errorf("the merges read %d pairs of %d (at most %d if follow-ups resume)", read, total, most)
	}
	if len(reduced) != len(want) {
		t.Errorf("%d keys reduced, want %d", len(reduced), len(want))
	}
	for k, n := range want {
		if reduced[k] != fmt.Sprint(n) {
			t.Errorf("key %s: %s values reduced, want %d", k, reduced[k], n)
		}
	}
	if out := e.output(t, st.ID); len(out) != len(want) || !slices.IsSorted(out) {
		t.Errorf("output: %d pairs (sorted %v), want %d", len(out), slices.IsSorted(out), len(want))
	}
}

func (e *testEngine) jobState(t *testing.T, id string) State {
	t.Helper()
	st, err := e.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st.State
}

// A line longer than a task may carry refuses the job at submission, and a
// key whose values do not fit one task fails it with that error.
func TestWhatCannotFitFailsClearly(t *testing.T) {
	e := newTestEngine(t, Config{MaxTaskBytes: 4 << 10})
	in, err := e.NewInput()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.AddFile("in", strings.NewReader(strings.Repeat("x", 10<<10)+"\n")); err != nil {
		t.Fatal(err)
	}
	_, err = e.Submit(context.Background(), Spec{Module: "noop", ChunkSize: 1 << 10}, in)
	if !errors.Is(err, broker.ErrInvalid) || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("a 10 KiB line against 4 KiB tasks: %v, want a refusal that says why", err)
	}

	st := e.submit(t, Spec{Reducers: 1, ChunkSize: 1}, "a\nb\nc\nd\n")
	w := e.connect(t, 8, true)
	big := bytes.Repeat([]byte("v"), 1500)
	got := w.serve(e, st.ID, nil, func(wp.Task) [][]byte {
		return [][]byte{abi.AppendPair(nil, []byte("hot"), big)} // 4 × 1.5 KiB for one key
	})
	if got.State != StateFailed || !strings.Contains(got.Error, `key "hot"`) {
		t.Errorf("one key with 6 KiB of values against 4 KiB tasks: %s %q, want failed naming the key", got.State, got.Error)
	}
}

// A worker that leaves gives its tasks back at once: another gets them.
func TestDepartedWorkerGivesTasksBack(t *testing.T) {
	e := newTestEngine(t, Config{})
	st := e.submit(t, Spec{Reducers: 1, ChunkSize: 1}, "a\nb\n")
	first := e.connect(t, 1, true)
	held := first.tasks()
	first.tr.Close("leaving")
	second := e.connect(t, 4, true)
	seen := map[uint64]bool{}
	answer := noopAnswer(1)
	second.serve(e, st.ID, nil, func(tk wp.Task) [][]byte {
		seen[tk.ID] = true
		return answer(tk)
	})
	if len(held) == 0 || len(seen) < 3 {
		t.Errorf("the first worker held %d tasks, the second ran %d; want them all run by the second", len(held), len(seen))
	}
}

// Answers for tasks a worker does not hold are tolerated a few times, then
// the session ends.
func TestAnswersForUnknownTasksEndTheSession(t *testing.T) {
	e := newTestEngine(t, Config{})
	w := e.connect(t, 1, false)
	for i := range maxAbuse + 1 {
		w.send(&wp.Results{Results: []wp.Result{{TaskID: uint64(1000 + i), Partitions: [][]byte{nil}}}})
	}
	for {
		b, ok := w.recvFrame()
		if !ok {
			return // the engine closed it
		}
		if f, err := wp.Decode(b); err == nil {
			if ef, ok := f.(*wp.Error); ok && ef.Code == wp.CodeInvalid {
				return
			}
		}
	}
}

// What the store holds at start is checked: a job record the engine would
// never write is set aside and reported, and the engine starts.
func TestBadRecordsAreSetAside(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	store, err := buntstore.Open(dir, buntstore.Options{Fsync: buntstore.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b, err := broker.New(context.Background(), store, broker.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	victim := dir + "/victim"
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	good := jobRecord{ID: "abc123", Spec: Spec{Module: "noop"}, Module: strings.Repeat("a", 64), State: StateDone, Submitted: time.Now()}
	forged := []broker.Record{
		{Key: "job/zzz", Value: []byte(`"x"`)},
		{Key: "job/dotdot", Value: mustJSON(t, jobRecord{ID: "../../victim", Module: good.Module, State: StateFailed, Submitted: time.Now()})},
		{Key: "job/paths", Value: mustJSON(t, jobRecord{ID: "paths", Module: good.Module, State: StateQueued, Submitted: time.Now(),
			Files: []inputFile{{Name: "p", Path: "../../../etc/passwd", Size: 10}}, BytesIn: 10, MapTasks: 1})},
		good.record(),
	}
	if _, err := b.Internal().Commit(context.Background(), []broker.CommitGroup{{RecordSet: forged}}); err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Config{DataDir: dir, Logger: log}, b.Internal(), wasmtest.Runner(t))
	if err != nil {
		t.Fatalf("the engine did not start over forged records: %v", err)
	}
	defer e.Close()
	var keys []string
	for _, s := range e.SetAside() {
		keys = append(keys, s.Key)
	}
	slices.Sort(keys)
	if want := []string{"job/dotdot", "job/paths", "job/zzz"}; !slices.Equal(keys, want) {
		t.Errorf("set aside %q, want %q", keys, want)
	}
	if _, err := e.Job(context.Background(), "abc123"); err != nil {
		t.Errorf("the good record did not load: %v", err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("a forged record's id reached a directory outside the data dir: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
