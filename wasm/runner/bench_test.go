package runner_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// BenchmarkTaskOverhead: one empty map task on the noop module, the whole
// call path (pool, parameters check, alloc, framing, call, output copy and
// decode).
func BenchmarkTaskOverhead(b *testing.B) {
	wasm := wasmtest.Module(b, "github.com/tabreduce/tabreduce/jobs/noop")
	for _, mode := range []string{"trusted", "interruptible"} {
		b.Run(mode, func(b *testing.B) {
			r, err := runner.New(context.Background(), runner.Config{CacheDir: wasmtest.CacheDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			compile := r.CompileTrusted
			if mode == "interruptible" {
				compile = r.Compile
			}
			sha, err := compile(context.Background(), wasm)
			if err != nil {
				b.Fatal(err)
			}
			task := runner.Task{ID: "bench", Module: sha, Params: []byte(`{}`)}
			chunk := abi.Chunk{Data: []byte("line\n")}
			for b.Loop() {
				if _, err := r.Map(context.Background(), task, chunk); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/task")
		})
	}
}

// BenchmarkColdStart: Compile (which also starts the first instance) of the
// wordcount module in a fresh runner, with an empty compilation cache and
// with a warm one.
func BenchmarkColdStart(b *testing.B) {
	wasm := wasmtest.Module(b, "github.com/tabreduce/tabreduce/jobs/wordcount")
	compile := func(b *testing.B, dir string) time.Duration {
		r, err := runner.New(context.Background(), runner.Config{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close(context.Background())
		t0 := time.Now()
		if _, err := r.Compile(context.Background(), wasm); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	b.Run("empty-cache", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			total += compile(b, b.TempDir())
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/compile")
	})
	b.Run("warm-cache", func(b *testing.B) {
		dir := b.TempDir()
		compile(b, dir)
		var total time.Duration
		for b.Loop() {
			total += compile(b, dir)
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/compile")
	})
}

// BenchmarkProgress: what a module's progress reports cost, on the job
// where they weigh most, grep over 1 MiB of short lines that never match
// (a line is little work, so ForEachLine's per-line check shows). "listened"
// runs under runner.WithProgress, "unlistened" without; with
// TABREDUCE_BASE_GREP=path/to/grep.wasm (a build from an SDK without
// progress reports) "base" runs that module too. Sub-benchmarks alternate
// with -count.
func BenchmarkProgress(b *testing.B) {
	mods := map[string][]byte{"sdk": wasmtest.Module(b, "github.com/tabreduce/tabreduce/jobs/grep")}
	if p := os.Getenv("TABREDUCE_BASE_GREP"); p != "" {
		wasm, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		mods["base"] = wasm
	}
	r, err := runner.New(context.Background(), runner.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	var in []byte
	for i := 0; len(in) < 1<<20; i++ {
		in = append(in, fmt.Sprintf("line %05d\n", i%100000)...)
	}
	chunk := abi.Chunk{Data: in}
	run := func(b *testing.B, wasm []byte, ctx context.Context) {
		sha, err := r.CompileTrusted(context.Background(), wasm)
		if err != nil {
			b.Fatal(err)
		}
		task := runner.Task{ID: "bench", Module: sha, Params: []byte(`{"pattern":"^never"}`)}
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := r.Map(ctx, task, chunk); err != nil {
				b.Fatal(err)
			}
		}
	}
	var reports atomic.Int64
	listened := runner.WithProgress(context.Background(), func(uint32) { reports.Add(1) })
	if base, ok := mods["base"]; ok {
		b.Run("base", func(b *testing.B) { run(b, base, context.Background()) })
	}
	b.Run("unlistened", func(b *testing.B) { run(b, mods["sdk"], context.Background()) })
	b.Run("listened", func(b *testing.B) {
		reports.Store(0)
		run(b, mods["sdk"], listened)
		b.ReportMetric(float64(reports.Load())/float64(b.N), "reports/call")
	})
}
