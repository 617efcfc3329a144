package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// benchParams are the benchmarks' centroids.
var benchParams = []byte(`{"centroids": [[1, 1], [9, 9], [-4, 7]]}`)

// benchPoints are the benchmarks' 400,000 2-D points, one line each as %v
// prints them.
func benchPoints() []byte {
	var in []byte
	for _, p := range wasmtest.ClusterPoints(400_000) {
		in = fmt.Appendf(in, "%v,%v\n", p[0], p[1])
	}
	return in
}

// BenchmarkKmeansVsNative: one iteration over 400,000 2-D points (≈ 15 MB of
// CSV, as %v prints float64s: mostly 16–17 significant digits), the module
// under wazero (trusted) against its native twin: the job's own map
// function (setParams and assign, the same parsing and assignment) run
// natively over the whole input as one chunk, then the means.
func BenchmarkKmeansVsNative(b *testing.B) {
	in := benchPoints()
	params := benchParams
	if err := setParams(params); err != nil {
		b.Fatal(err)
	}
	wasmtest.VersusNative(b, pkg, in, params, driver.Options{}, false, nativeTwin(b))
}

// nativeTwin is the benchmarks' native baseline: the job's own map
// function run natively over the whole input as one chunk, then the means.
func nativeTwin(b *testing.B) func([]byte) {
	return func(in []byte) {
		var means [][2]float64
		err := assign(in, func(_, _ []byte) {
			n := float64(counts[len(means)])
			means = append(means, [2]float64{sums[2*len(means)] / n, sums[2*len(means)+1] / n})
		})
		if err != nil || counts[0]+counts[1]+counts[2] != 400_000 || len(means) != 3 {
			b.Fatalf("native twin: %v, counts %v", err, counts)
		}
	}
}

// BenchmarkKmeansCVsNative: BenchmarkKmeansVsNative's work three ways,
// alternated within each iteration: the native twin (the baseline), the
// Go module alone under wazero, and the C mapper (jobs/kmeans-c) with the
// Go module as reducer under wazero, both trusted as built-ins run, one
// task at a time, 4 MiB chunks (the driver's default). Each job's output is
// checked equal to the other's. Reported: each one's best MB/s, and
// go/native and c/native, the ratios of the best times and of the sums.
func BenchmarkKmeansCVsNative(b *testing.B) {
	in := benchPoints()
	if err := setParams(benchParams); err != nil {
		b.Fatal(err)
	}
	native := nativeTwin(b)
	r, mapper := cMapper(b)
	reducer, err := r.CompileTrusted(context.Background(), wasmtest.Module(b, pkg))
	if err != nil {
		b.Fatal(err)
	}
	cs := []string{"1,1", "9,9", "-4,7"}
	goJob := r.Executor("kmeans", reducer, benchParams)
	cJob, err := r.JobExecutor(context.Background(), "kmeans-c", mapper, reducer, argsParams(cs))
	if err != nil {
		b.Fatal(err)
	}
	opts := driver.Options{Parallelism: 1}
	run := func(x driver.Executor) (driver.Output, time.Duration) {
		t0 := time.Now()
		out, err := driver.Run(context.Background(), x, in, opts)
		if err != nil {
			b.Fatal(err)
		}
		return out, time.Since(t0)
	}
	run(goJob) // warm-up: instances started, modules loaded
	run(cJob)
	var best, total [3]time.Duration
	for b.Loop() {
		t0 := time.Now()
		native(in)
		dn := time.Since(t0)
		goOut, dg := run(goJob)
		cOut, dc := run(cJob)
		if d := wasmtest.Diff(driver.Output{Pairs: cOut.Pairs}, driver.Output{Pairs: goOut.Pairs}); d != "" {
			b.Fatalf("C mapper vs Go job: %s", d)
		}
		for i, d := range [3]time.Duration{dn, dg, dc} {
			total[i] += d
			if best[i] == 0 || d < best[i] {
				best[i] = d
			}
		}
	}
	mb := float64(len(in)) / 1e6
	b.ReportMetric(mb/best[0].Seconds(), "native-MB/s")
	b.ReportMetric(mb/best[1].Seconds(), "go-MB/s")
	b.ReportMetric(mb/best[2].Seconds(), "c-MB/s")
	b.ReportMetric(best[0].Seconds()/best[1].Seconds(), "go/native")
	b.ReportMetric(best[0].Seconds()/best[2].Seconds(), "c/native")
	b.ReportMetric(total[0].Seconds()/total[1].Seconds(), "mean-go/native")
	b.ReportMetric(total[0].Seconds()/total[2].Seconds(), "mean-c/native")
	b.ReportMetric(0, "ns/op")
}
