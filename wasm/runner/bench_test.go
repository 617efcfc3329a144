package runner_test

import (
	"context"
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
