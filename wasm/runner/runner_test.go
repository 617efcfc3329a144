package runner_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const wordcount = "github.com/tabreduce/tabreduce/jobs/wordcount"

// Hand-assembled modules, so that these cases need no toolchain at all.
var (
	// garbage is not wasm.
	garbage = []byte("this is not a wasm module at all")
	// emptyModule is the smallest valid module: no memory, no exports.
	emptyModule = []byte("\x00asm\x01\x00\x00\x00")
	// envImport declares a type () -> () and imports env.foo with it.
	envImport = []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" +
		"\x02\x0b\x01\x03env\x03foo\x00\x00")
	// progressNoArg imports tabreduce.progress as () -> (), not (i32) -> ().
	progressNoArg = []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" +
		"\x02\x16\x01\x09tabreduce\x08progress\x00\x00")
	// hostOther imports a function of the host module that does not exist.
	hostOther = []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" +
		"\x02\x13\x01\x09tabreduce\x05other\x00\x00")
)

// newRunner starts a runner with tight limits for hostile modules.
func newRunner(t *testing.T, cfg runner.Config) *runner.Runner {
	t.Helper()
	cfg.CacheDir = wasmtest.CacheDir()
	r, err := runner.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func TestCompileRejects(t *testing.T) {
	built := wasmtest.Modules(t, "./testdata/noexports", "./testdata/badimport", "./testdata/badversion")
	tests := []struct {
		name    string
		wasm    []byte
		want    error
		mention string
	}{
		{"garbage bytes", garbage, runner.ErrBadModule, "magic"},
		{"truncated module", emptyModule[:6], runner.ErrBadModule, ""},
		{"no memory", emptyModule, runner.ErrMissingExport, `"memory"`},
		{"import outside WASI", envImport, runner.ErrImportNotAllowed, "env.foo"},
		{"progress of the wrong type", progressNoArg, runner.ErrBadModule, "tabreduce.progress"},
		{"host import other than progress", hostOther, runner.ErrImportNotAllowed, "tabreduce.other"},
		{"no ABI exports", built[0], runner.ErrMissingExport, "tr_version"},
		{"WASI call not served", built[1], runner.ErrImportNotAllowed, "path_open"},
		{"unknown ABI version", built[2], runner.ErrBadModule, "version 99"},
	}
	r := newRunner(t, runner.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Compile(t.Context(), tt.wasm)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.mention)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	built := wasmtest.Modules(t, "./testdata/loop", "./testdata/bomb", "./testdata/hugeout", wordcount)
	// Only the loop needs a short deadline; the others get a long one so
	// that a slow machine (or the race detector) cannot turn their limit
	// into a timeout.
	cfg := func(timeout time.Duration) runner.Config {
		return runner.Config{CallTimeout: timeout, MemoryLimitPages: 1024 /* 64 MiB */, MaxOutputBytes: 1 << 20}
	}
	tests := []struct {
		name    string
		wasm    []byte
		timeout time.Duration
		want    error
	}{
		{"infinite loop", built[0], time.Second, runner.ErrTimeout},
		{"memory bomb", built[1], 30 * time.Second, runner.ErrOutOfMemory},
		{"huge output", built[2], 30 * time.Second, runner.ErrOutputTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunner(t, cfg(tt.timeout))
			good, err := r.Compile(t.Context(), built[3])
			if err != nil {
				t.Fatal(err)
			}
			sha, err := r.Compile(t.Context(), tt.wasm)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = r.Map(t.Context(), runner.Task{ID: "hostile-7", Module: sha}, abi.Chunk{Data: []byte("x\n")})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var te *runner.TaskError
			if !errors.As(err, &te) || te.Task != "hostile-7" || te.Op != "map" || !strings.Contains(err.Error(), "hostile-7") {
				t.Fatalf("err = %v, want a TaskError naming the task", err)
			}
			t.Logf("error: %v", err)
			if d := time.Since(start); d > 30*time.Second {
				t.Fatalf("took %v", d)
			}
			// The host survives and keeps serving good modules.
			res, err := r.Map(t.Context(), runner.Task{ID: "good", Module: good}, abi.Chunk{Data: []byte("a b a\n")})
			if err != nil {
				t.Fatal(err)
			}
			if pairs, _ := abi.DecodePairs(res.Pairs); len(pairs) != 2 {
				t.Fatalf("good module after hostile one: %q", pairs)
			}
		})
	}
}

func TestPanicIsJobError(t *testing.T) {
	r := newRunner(t, runner.Config{MaxIdle: 1})
	sha, err := r.Compile(t.Context(), wasmtest.Module(t, "./testdata/panics"))
	if err != nil {
		t.Fatal(err)
	}
	task := runner.Task{ID: "p", Module: sha}
	_, err = r.Map(t.Context(), task, abi.Chunk{Data: []byte("panic now\n")})
	if !errors.Is(err, runner.ErrJob) || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("err = %v, want ErrJob about the nil map", err)
	}
	for range 3 { // the same (only) instance keeps working
		res, err := r.Map(t.Context(), task, abi.Chunk{Data: []byte("a\nb\n")})
		if err != nil {
			t.Fatal(err)
		}
		if want := abi.AppendPair(nil, []byte("lines"), []byte("2")); !bytes.Equal(res.Pairs, want) {
			t.Fatalf("pairs %q, want %q", res.Pairs, want)
		}
	}
}

func TestUnknownModule(t *testing.T) {
	r := newRunner(t, runner.Config{})
	_, err := r.Reduce(t.Context(), runner.Task{ID: "t", Module: strings.Repeat("ab", 32)}, nil)
	if !errors.Is(err, runner.ErrUnknownModule) {
		t.Fatalf("err = %v, want ErrUnknownModule", err)
	}
}

// TestModuleDir: a module compiled by one runner can be loaded by its hash in
// another that shares the module directory.
func TestModuleDir(t *testing.T) {
	dir := t.TempDir()
	wasm := wasmtest.Module(t, wordcount)
	sha, err := newRunner(t, runner.Config{ModuleDir: dir}).Compile(t.Context(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	res, err := newRunner(t, runner.Config{ModuleDir: dir}).Map(t.Context(), runner.Task{ID: "t", Module: sha}, abi.Chunk{Data: []byte("x y\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := abi.DecodePairs(res.Pairs); len(got) != 2 {
		t.Fatalf("pairs %q", got)
	}
}

// TestConcurrentAndRecycled runs map tasks from many goroutines with
// instances recycled after every call (RecyclePages 1) and checks every
// result is identical: determinism across instances.
func TestConcurrentAndRecycled(t *testing.T) {
	wasm := wasmtest.Module(t, wordcount)
	for _, cfg := range []runner.Config{{}, {RecyclePages: 1}} {
		r := newRunner(t, cfg)
		sha, err := r.Compile(t.Context(), wasm)
		if err != nil {
			t.Fatal(err)
		}
		chunk := abi.Chunk{Offset: 10, Data: bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 2000)}
		results := make([][]byte, 16)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				res, err := r.Map(context.Background(), runner.Task{ID: "c", Module: sha}, chunk)
				if err != nil {
					t.Error(err)
					return
				}
				results[i] = abi.AppendResult(nil, res)
			})
		}
		wg.Wait()
		for i := range results {
			if !bytes.Equal(results[i], results[0]) {
				t.Fatalf("recycle=%d: result %d differs", cfg.RecyclePages, i)
			}
		}
	}
}

func TestCancelledContext(t *testing.T) {
	r := newRunner(t, runner.Config{})
	sha, err := r.Compile(t.Context(), wasmtest.Module(t, "./testdata/loop"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = r.Map(ctx, runner.Task{ID: "c", Module: sha}, abi.Chunk{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCallBoundByTheSoonerDeadline: a call stops at the caller's deadline
// when it comes before the call timeout, and at the call timeout when the
// caller's deadline is later.
func TestCallBoundByTheSoonerDeadline(t *testing.T) {
	loop := wasmtest.Module(t, "./testdata/loop")
	tests := []struct {
		name              string
		callTimeout, ctxd time.Duration
	}{
		{"caller's deadline sooner", time.Minute, 300 * time.Millisecond},
		{"call timeout sooner", 300 * time.Millisecond, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunner(t, runner.Config{CallTimeout: tt.callTimeout})
			sha, err := r.Compile(t.Context(), loop)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), tt.ctxd)
			defer cancel()
			start := time.Now()
			_, err = r.Map(ctx, runner.Task{ID: "loop", Module: sha}, abi.Chunk{Data: []byte("x\n")})
			if !errors.Is(err, runner.ErrTimeout) {
				t.Fatalf("err = %v, want %v", err, runner.ErrTimeout)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("stopped after %v, want about 300ms", d)
			}
		})
	}
}
