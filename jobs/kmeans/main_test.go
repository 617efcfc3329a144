package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const pkg = "github.com/tabreduce/tabreduce/jobs/kmeans"

// oracle assigns each point by brute force and averages; float sums may differ
// in the last bits from the job's partial sums, so it compares with a
// tolerance.
func oracle(pts [][2]float64, cs [][]float64) func(driver.Output) string {
	sums := make([][3]float64, len(cs))
	for _, p := range pts {
		best, bestD := 0, math.Inf(1)
		for i, c := range cs {
			if d := math.Hypot(p[0]-c[0], p[1]-c[1]); d < bestD {
				best, bestD = i, d
			}
		}
		sums[best][0] += p[0]
		sums[best][1] += p[1]
		sums[best][2]++
	}
	return func(got driver.Output) string {
		if len(got.Pairs) != len(cs) {
			return fmt.Sprintf("%d centroids, want %d", len(got.Pairs), len(cs))
		}
		for i, p := range got.Pairs {
			if string(p.Key) != fmt.Sprintf("%04d", i) {
				return fmt.Sprintf("key %q, want %04d", p.Key, i)
			}
			xy := strings.Split(string(p.Value), ",")
			for j := range 2 {
				v, err := strconv.ParseFloat(xy[j], 64)
				want := sums[i][j] / sums[i][2]
				if err != nil || math.Abs(v-want) > 1e-9*math.Max(1, math.Abs(want)) {
					return fmt.Sprintf("centroid %d coordinate %d = %q, want %v", i, j, xy[j], want)
				}
			}
		}
		if got.Counters.Get("points") != int64(len(pts)) {
			return fmt.Sprintf("points counter %d, want %d", got.Counters.Get("points"), len(pts))
		}
		return ""
	}
}

func TestKmeans(t *testing.T) {
	pts := wasmtest.ClusterPoints(6000)
	var in strings.Builder
	for _, p := range pts {
		fmt.Fprintf(&in, "%v,%v\n", p[0], p[1])
	}
	cs := [][]float64{{1, 1}, {9, 9}, {-4, 7}}
	params := []byte(`{"centroids": [[1, 1], [9, 9], [-4, 7]]}`)
	opts := driver.Options{ChunkSize: 16 << 10, Reducers: 2}
	wasmtest.Check(t, pkg, Job, []byte(in.String()), params, opts, oracle(pts, cs))
}
