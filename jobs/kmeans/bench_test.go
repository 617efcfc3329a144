package main

import (
	"fmt"
	"testing"

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
	wasmtest.VersusNative(b, pkg, in, params, driver.Options{}, false, func(in []byte) {
		var means [][2]float64
		err := assign(in, func(_, _ []byte) {
			n := float64(counts[len(means)])
			means = append(means, [2]float64{sums[2*len(means)] / n, sums[2*len(means)+1] / n})
		})
		if err != nil || counts[0]+counts[1]+counts[2] != 400_000 || len(means) != 3 {
			b.Fatalf("native twin: %v, counts %v", err, counts)
		}
	})
}
