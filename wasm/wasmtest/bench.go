package wasmtest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

// VersusNative benchmarks a job module against a plain native Go twin on the
// same input in the same run: each iteration times native(input) and then
// the whole job (map, shuffle, reduce; one task at a time) under wazero. It
// reports both throughputs in MB/s and the ratio wasm/native, taken from
// each side's fastest iteration (on a shared machine, load only ever slows a
// run down; run with -benchtime 3x or more), the ratio of the total times
// as mean-wasm/native, and splits the wasm time into map tasks, reduce tasks
// and the host's shuffle (mean seconds per run). The module is compiled
// before timing starts, as trusted (no termination checks) unless
// interruptible.
func VersusNative(b *testing.B, pkg string, input, params []byte, opts driver.Options, interruptible bool, native func([]byte)) {
	b.Helper()
	r, err := runner.New(context.Background(), runner.Config{CacheDir: CacheDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	compile := r.CompileTrusted
	if interruptible {
		compile = r.Compile
	}
	sha, err := compile(context.Background(), Module(b, pkg))
	if err != nil {
		b.Fatal(err)
	}
	exec := &timedExecutor{Executor: r.Executor(pkg, sha, params)}
	opts.Parallelism = 1
	warm := input[:min(len(input), 1<<20)]
	warm = warm[:bytes.LastIndexByte(warm, '\n')+1]
	if _, err := driver.Run(context.Background(), exec, warm, opts); err != nil {
		b.Fatal(err) // warm-up: instance started, parameters set
	}
	var tNative, tWasm, bestNative, bestWasm time.Duration
	exec.tMap, exec.tReduce = 0, 0
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		native(input)
		t1 := time.Now()
		if _, err := driver.Run(context.Background(), exec, input, opts); err != nil {
			b.Fatal(err)
		}
		dn, dw := t1.Sub(t0), time.Since(t1)
		tNative, tWasm = tNative+dn, tWasm+dw
		if bestNative == 0 || dn < bestNative {
			bestNative = dn
		}
		if bestWasm == 0 || dw < bestWasm {
			bestWasm = dw
		}
	}
	mb := float64(len(input)) / 1e6
	b.ReportMetric(mb/bestNative.Seconds(), "native-MB/s")
	b.ReportMetric(mb/bestWasm.Seconds(), "wasm-MB/s")
	b.ReportMetric(bestNative.Seconds()/bestWasm.Seconds(), "wasm/native")
	b.ReportMetric(tNative.Seconds()/tWasm.Seconds(), "mean-wasm/native")
	n := float64(b.N)
	b.ReportMetric(exec.tMap.Seconds()/n, "map-s")
	b.ReportMetric(exec.tReduce.Seconds()/n, "reduce-s")
	b.ReportMetric((tWasm-exec.tMap-exec.tReduce).Seconds()/n, "shuffle-s")
	b.ReportMetric(0, "ns/op")
}

// timedExecutor adds up the time spent in map and in reduce tasks (module
// calls plus the runner's framing), so that a benchmark can tell them from
// the host's shuffle. Parallelism must be 1.
type timedExecutor struct {
	driver.Executor
	tMap, tReduce time.Duration
}

func (x *timedExecutor) Map(ctx context.Context, c abi.Chunk) (abi.Result, error) {
	t0 := time.Now()
	defer func() { x.tMap += time.Since(t0) }()
	return x.Executor.Map(ctx, c)
}

func (x *timedExecutor) Reduce(ctx context.Context, groups []byte) (abi.Result, error) {
	t0 := time.Now()
	defer func() { x.tReduce += time.Since(t0) }()
	return x.Executor.Reduce(ctx, groups)
}
