package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/modenc"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// The job modules the tests run, built from source by wasmtest.
const (
	wordcount = "github.com/tabreduce/tabreduce/jobs/wordcount"
	noop      = "github.com/tabreduce/tabreduce/jobs/noop"
	panics    = "../runner/testdata/panics" // map panics on a chunk starting "panic"
	loop      = "../runner/testdata/loop"   // map never returns
)

// compiled builds and compiles modules on the shared test runner
// (interruptible, as a worker compiles them) and returns their hashes.
func compiled(t testing.TB, pkgs ...string) (*runner.Runner, []string) {
	t.Helper()
	r := wasmtest.Runner(t)
	shas := make([]string, len(pkgs))
	for i, wasm := range wasmtest.Modules(t, pkgs...) {
		sha, err := r.Compile(context.Background(), wasm)
		if err != nil {
			t.Fatal(err)
		}
		shas[i] = sha
	}
	return r, shas
}

const text = "the quick brown fox jumps over the lazy dog\n" +
	"The dog barks; the fox runs.\n" +
	"A quick brown dog? No: a lazy fox!\n" +
	"über Straße straße ÜBER 42 42 42\n"

// TestMapCombinePartition runs wordcount's map tasks (with the combiner)
// and then its reduce tasks through the worker's execution path, feeding
// the reduce tasks what the server would (each partition's pairs from every
// map task, sorted and grouped), and checks that the job's output equals
// what wasm/driver computes for the same input in one process.
func TestMapCombinePartition(t *testing.T) {
	r, shas := compiled(t, wordcount)
	input := []byte(strings.Repeat(text, 20))
	const chunkSize, reducers = 100, 3
	x := executor{r: r}
	var sc scratch
	parts := make([][]abi.Pair, reducers)
	var counters abi.Counters
	for i, c := range driver.SplitChunks(input, chunkSize) {
		task := workerproto.Task{ID: uint64(i), Job: "wc", Phase: workerproto.PhaseMap, Module: shas[0],
			Reducers: reducers, Flags: workerproto.FlagCombine, Offset: c.Offset, Input: c.Data}
		res := runChecked(t, &x, &task, &sc)
		counters = counters.Merge(res.Counters)
		for p, stream := range res.Partitions {
			pairs, _ := abi.DecodePairs(stream)
			for j := 1; j < len(pairs); j++ {
				if bytes.Equal(pairs[j-1].Key, pairs[j].Key) {
					t.Fatalf("map task %d: key %q twice in partition %d: not combined", i, pairs[j].Key, p)
				}
			}
			parts[p] = append(parts[p], pairs...)
		}
	}
	var got driver.Output
	for p, pairs := range parts {
		slices.SortFunc(pairs, abi.Pair.Compare)
		task := workerproto.Task{ID: uint64(100 + p), Job: "wc", Phase: workerproto.PhaseReduce, Module: shas[0],
			Reducers: reducers, Input: abi.EncodeGroups(pairs)}
		res := runChecked(t, &x, &task, &sc)
		counters = counters.Merge(res.Counters)
		out, _ := abi.DecodePairs(res.Partitions[0])
		got.Pairs = append(got.Pairs, out...)
	}
	slices.SortFunc(got.Pairs, abi.Pair.Compare)
	got.Counters = counters
	want, err := driver.Run(t.Context(), r.Executor("wc", shas[0], nil), input, driver.Options{ChunkSize: chunkSize, Reducers: reducers})
	if err != nil {
		t.Fatal(err)
	}
	if d := wasmtest.Diff(got, want); d != "" {
		t.Fatalf("worker vs driver: %s", d)
	}
	if fox := lookup(got.Pairs, "fox"); fox != "60" {
		t.Fatalf("fox counted %q times, want 60", fox)
	}
}

// runChecked runs a task that must succeed and checks its partitions.
func runChecked(t *testing.T, x *executor, task *workerproto.Task, sc *scratch) workerproto.Result {
	t.Helper()
	var progress atomic.Uint32
	res, err := x.run(t.Context(), task, sc, &progress)
	if err != nil {
		t.Fatalf("%s task %d: %v", task.Phase, task.ID, err)
	}
	if err := workerproto.CheckPartitions(task.Phase, int(task.Reducers), res.Partitions); err != nil {
		t.Fatalf("%s task %d: %v", task.Phase, task.ID, err)
	}
	return res
}

func lookup(pairs []abi.Pair, key string) string {
	for _, p := range pairs {
		if string(p.Key) == key {
			return string(p.Value)
		}
	}
	return ""
}

// TestPartitionShapes covers the output shaping without a module: sorting,
// partitioning and the pass-through of already sorted single partitions.
func TestPartitionShapes(t *testing.T) {
	stream := func(kvs ...string) []byte {
		var b []byte
		for i := 0; i < len(kvs); i += 2 {
			b = abi.AppendPair(b, []byte(kvs[i]), []byte(kvs[i+1]))
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		r    int
		same bool // the input stream is passed through
	}{
		{"empty", nil, 4, false},
		{"sorted single", stream("a", "1", "a", "2", "b", "0"), 1, true},
		{"unsorted single", stream("b", "1", "a", "2", "a", "1"), 1, false},
		{"many partitions", stream("k1", "x", "k2", "y", "k3", "z", "k4", "w", "k1", "a"), 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sc scratch
			parts, err := sc.partition(tt.in, tt.r)
			if err != nil {
				t.Fatal(err)
			}
			phase := workerproto.PhaseMap
			if err := workerproto.CheckPartitions(phase, tt.r, parts); err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, p := range parts {
				total += len(p)
			}
			if total != len(tt.in) {
				t.Fatalf("%d bytes out, %d in", total, len(tt.in))
			}
			if same := len(tt.in) > 0 && &parts[0][0] == &tt.in[0]; same != tt.same {
				t.Fatalf("passed through = %v, want %v", same, tt.same)
			}
		})
	}
	var sc scratch
	if _, err := sc.partition([]byte{9, 0, 0, 0}, 2); !errors.Is(err, runner.ErrBadOutput) {
		t.Fatalf("malformed stream: %v", err)
	}
}

func TestFailureKinds(t *testing.T) {
	r, shas := compiled(t, wordcount, panics, loop)
	unknown := strings.Repeat("0", 64)
	tests := []struct {
		name    string
		task    workerproto.Task
		max     int
		want    workerproto.FailureKind
		mention string
	}{
		{"job panics", workerproto.Task{Module: shas[1], Input: []byte("panic now\n")}, 0, workerproto.FailureJob, "nil map"},
		{"timeout", workerproto.Task{Module: shas[2], Input: []byte("x\n"), Timeout: 50 * time.Millisecond}, 0, workerproto.FailureTimeout, "deadline"},
		{"unknown module", workerproto.Task{Module: unknown, Input: []byte("x\n")}, 0, workerproto.FailureModule, "unknown module"},
		{"result too large", workerproto.Task{Module: shas[0], Input: []byte(text)}, 16, workerproto.FailureTooLarge, "the server takes 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.task.Phase, tt.task.Reducers, tt.task.Job = workerproto.PhaseMap, 2, "j"
			x := executor{r: r, maxResult: tt.max}
			var progress atomic.Uint32
			_, err := x.run(t.Context(), &tt.task, &scratch{}, &progress)
			if err == nil {
				t.Fatal("task succeeded")
			}
			if got := failureKind(err); got != tt.want {
				t.Fatalf("kind %v, want %v (%v)", got, tt.want, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
	if got := failureKind(errors.New("something else")); got != workerproto.FailureInternal {
		t.Fatalf("unclassified error: %v", got)
	}
}

// TestHTTPModules serves modules from a real HTTP server: the worker fetches
// a module once however many tasks need it at once, in brotli, refuses bytes
// that do not hash to the name and a body that decodes past its limit, and
// retries a failed fetch.
func TestHTTPModules(t *testing.T) {
	wasm := wasmtest.Module(t, noop)
	sum := sha256.Sum256(wasm)
	good := hex.EncodeToString(sum[:])
	liar := strings.Repeat("ab", 32)
	bomb := strings.Repeat("ef", 32)
	br, err := modenc.Encode(wasm, modenc.Brotli, 5)
	if err != nil {
		t.Fatal(err)
	}
	zeros, err := modenc.Encode(make([]byte, 8<<20), modenc.Gzip, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int32
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fetches.Add(1)
		if req.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		switch {
		case fail.Load():
			http.Error(w, "down", http.StatusServiceUnavailable)
		case req.URL.Path == "/modules/"+good+".wasm" && slices.Contains(modenc.Accept(req.Header.Get("Accept-Encoding")), modenc.Brotli):
			w.Header().Set("Content-Encoding", modenc.Brotli)
			w.Write(br)
		case req.URL.Path == "/modules/"+good+".wasm":
			http.Error(w, "the worker did not accept brotli", http.StatusNotAcceptable)
		case req.URL.Path == "/modules/"+bomb+".wasm":
			w.Header().Set("Content-Encoding", modenc.Gzip)
			w.Write(zeros)
		case req.URL.Path == "/modules/"+liar+".wasm":
			w.Write(wasm)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	r, err := runner.New(t.Context(), runner.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	m := &HTTPModules{Server: srv.URL + "/", Header: http.Header{"Authorization": {"Bearer t"}}, Client: srv.Client(), MaxBytes: 4 << 20}

	fail.Store(true)
	if err := m.Prepare(t.Context(), r, good); !errors.Is(err, ErrModuleUnavailable) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("server down: %v", err)
	}
	fail.Store(false)
	fetches.Store(0)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = m.Prepare(t.Context(), r, good) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 8 concurrent tasks, want 1", n)
	}
	if _, err := r.Map(t.Context(), runner.Task{ID: "t", Module: good}, abi.Chunk{Data: []byte("x\n")}); err != nil {
		t.Fatalf("fetched module does not run: %v", err)
	}
	if err := m.Prepare(t.Context(), r, good); err != nil || fetches.Load() != 1 {
		t.Fatalf("second prepare: %v, %d fetches", err, fetches.Load())
	}
	if err := m.Prepare(t.Context(), r, liar); !errors.Is(err, ErrModuleUnavailable) || !strings.Contains(err.Error(), "hash to") {
		t.Fatalf("wrong bytes: %v", err)
	}
	if err := m.Prepare(t.Context(), r, strings.Repeat("cd", 32)); !errors.Is(err, ErrModuleUnavailable) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing module: %v", err)
	}
	if err := m.Prepare(t.Context(), r, bomb); !errors.Is(err, ErrModuleUnavailable) || !errors.Is(err, modenc.ErrTooLarge) {
		t.Fatalf("a body that decodes to 8 MiB with a 4 MiB limit: %v", err)
	}
	if got := failureKind(m.Prepare(t.Context(), r, liar)); got != workerproto.FailureModule {
		t.Fatalf("kind %v", got)
	}
}
