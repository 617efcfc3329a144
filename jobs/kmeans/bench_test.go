package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// BenchmarkKmeansVsNative: one iteration over 400,000 2-D points (≈ 15 MB of
// CSV), the module under wazero (trusted) against a plain native loop that
// parses (with the job's parsePoint), assigns and sums the same way.
func BenchmarkKmeansVsNative(b *testing.B) {
	var in []byte
	for _, p := range wasmtest.ClusterPoints(400_000) {
		in = fmt.Appendf(in, "%v,%v\n", p[0], p[1])
	}
	cs := [][]float64{{1, 1}, {9, 9}, {-4, 7}}
	params := []byte(`{"centroids": [[1, 1], [9, 9], [-4, 7]]}`)
	wasmtest.VersusNative(b, pkg, in, params, driver.Options{}, false, func(in []byte) {
		sums := make([][3]float64, len(cs))
		var p []float64
		for line := range bytes.Lines(in) {
			p, _ = parsePoint(p[:0], bytes.TrimSpace(line))
			i := Nearest(p, cs)
			sums[i][0] += p[0]
			sums[i][1] += p[1]
			sums[i][2]++
		}
		if sums[0][2]+sums[1][2]+sums[2][2] != 400_000 {
			b.Fatal("native lost points")
		}
	})
}
