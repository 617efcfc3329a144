// Command kmeans is a tabreduce job: one iteration of k-means. Input lines are
// points as comma-separated numbers; the parameters give the current
// centroids, {"centroids": [[x, y], ...]}. Each point goes to its nearest
// centroid (squared Euclidean distance, lowest index on ties); the output maps
// each centroid index (4 digits) to the mean of its points, comma-separated,
// printed in the shortest form that reads back exactly.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Job is the k-means job.
var Job = mr.Job{Init: setParams, Map: assign, Combine: mr.CombineFunc(addPartials), Reduce: means}

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}

var (
	centroids [][]float64
	points    = mr.Counter("points")
	point     []float64
)

func setParams(params []byte) error {
	var p struct {
		Centroids [][]float64 `json:"centroids"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return fmt.Errorf("kmeans parameters: %w", err)
	}
	if len(p.Centroids) == 0 {
		return errors.New(`kmeans parameters: "centroids" must list at least one point`)
	}
	for i, c := range p.Centroids {
		if len(c) != len(p.Centroids[0]) || len(c) == 0 {
			return fmt.Errorf("kmeans parameters: centroid %d has %d dimensions, centroid 0 has %d", i, len(c), len(p.Centroids[0]))
		}
	}
	centroids = p.Centroids
	return nil
}

func assign(chunk []byte, emit mr.Emit) error {
	dim := len(centroids[0])
	var key, val []byte
	return mr.ForEachLine(chunk, func(line []byte, offset uint64) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		point = point[:0]
		for f := range bytes.SplitSeq(line, []byte{','}) {
			x, err := strconv.ParseFloat(string(bytes.TrimSpace(f)), 64)
			if err != nil {
				return fmt.Errorf("line at %d: %w", offset, err)
			}
			point = append(point, x)
		}
		if len(point) != dim {
			return fmt.Errorf("line at %d: %d dimensions, the centroids have %d", offset, len(point), dim)
		}
		points.Add(1)
		key = fmt.Appendf(key[:0], "%04d", Nearest(point, centroids))
		val = appendPartial(val[:0], 1, point)
		emit(key, val)
		return nil
	})
}

// Nearest returns the index of the centroid closest to p.
func Nearest(p []float64, cs [][]float64) int {
	best, bestD := 0, 0.0
	for i, c := range cs {
		d := 0.0
		for j, x := range p {
			diff := x - c[j]
			d += diff * diff
		}
		if i == 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// A partial is "count,sum1,sum2,...".
func appendPartial(dst []byte, n int64, sums []float64) []byte {
	dst = strconv.AppendInt(dst, n, 10)
	for _, s := range sums {
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, s, 'g', -1, 64)
	}
	return dst
}

// addValues sums partials.
func addValues(values mr.Values) (int64, []float64, error) {
	var n int64
	var sums []float64
	for values.Next() {
		fields := bytes.Split(values.Value(), []byte{','})
		c, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, nil, fmt.Errorf("bad partial %q", values.Value())
		}
		if sums == nil {
			sums = make([]float64, len(fields)-1)
		}
		if len(fields)-1 != len(sums) {
			return 0, nil, fmt.Errorf("partial %q has %d dimensions, want %d", values.Value(), len(fields)-1, len(sums))
		}
		for i, f := range fields[1:] {
			x, err := strconv.ParseFloat(string(f), 64)
			if err != nil {
				return 0, nil, fmt.Errorf("bad partial %q", values.Value())
			}
			sums[i] += x
		}
		n += c
	}
	return n, sums, nil
}

func addPartials(key []byte, values mr.Values, emit mr.Emit) error {
	n, sums, err := addValues(values)
	if err != nil {
		return err
	}
	emit(key, appendPartial(nil, n, sums))
	return nil
}

func means(key []byte, values mr.Values, emit mr.Emit) error {
	n, sums, err := addValues(values)
	if err != nil {
		return err
	}
	var out []byte
	for i, s := range sums {
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendFloat(out, s/float64(n), 'g', -1, 64)
	}
	emit(key, out)
	return nil
}
