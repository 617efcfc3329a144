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
	keys      [][]byte // keys[i] is centroid i's output key, "%04d"
	points    = mr.Counter("points")
	point     []float64
	// The map task's partial sums: count and coordinate sums per centroid,
	// emitted once at the end of the chunk.
	counts []int64
	sums   []float64 // centroid i's sums at [i*dim, (i+1)*dim)
	val    []byte
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
	keys = make([][]byte, len(centroids))
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "%04d", i)
	}
	counts = make([]int64, len(centroids))
	sums = make([]float64, len(centroids)*len(centroids[0]))
	return nil
}

// assign adds each point of the chunk to the count and sums of its nearest
// centroid, then emits one partial per centroid that got points. Summing in
// the map function, rather than emitting a partial per point for the
// combiner, keeps float formatting and parsing out of the per-point path.
func assign(chunk []byte, emit mr.Emit) error {
	dim := len(centroids[0])
	clear(counts)
	clear(sums)
	var n int64
	err := mr.ForEachLine(chunk, func(line []byte, offset uint64) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		var err error
		if point, err = parsePoint(point[:0], line); err != nil {
			return fmt.Errorf("line at %d: %w", offset, err)
		}
		if len(point) != dim {
			return fmt.Errorf("line at %d: %d dimensions, the centroids have %d", offset, len(point), dim)
		}
		i := Nearest(point, centroids)
		counts[i]++
		for j, x := range point {
			sums[i*dim+j] += x
		}
		n++
		return nil
	})
	if err != nil {
		return err
	}
	points.Add(n)
	for i, c := range counts {
		if c > 0 {
			val = appendPartial(val[:0], c, sums[i*dim:(i+1)*dim])
			emit(keys[i], val)
		}
	}
	return nil
}

// parsePoint appends the comma-separated numbers of line to dst.
func parsePoint(dst []float64, line []byte) ([]float64, error) {
	for {
		f, rest, more := bytes.Cut(line, []byte{','})
		x, err := parseFloat(bytes.TrimSpace(f))
		if err != nil {
			return dst, err
		}
		dst = append(dst, x)
		if !more {
			return dst, nil
		}
		line = rest
	}
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat returns what strconv.ParseFloat(b, 64) returns. Plain decimals
// ("-12.375") of at most 2^53 with at most 22 fraction digits are exact as
// float64(m) / 10^k, one correctly rounded division (Clinger's fast path);
// anything else goes to strconv. Under wazero this path is 4–5× faster than
// strconv's, which is most of the map's time.
func parseFloat(b []byte) (float64, error) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		i, neg = 1, b[0] == '-'
	}
	var m uint64
	digits, frac := 0, -1 // frac counts digits after the point, -1 before it
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c-'0' < 10 && m < 1<<53/10*10: // no overflow, m stays exact
			m = m*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
			continue
		case c == '.' && frac < 0:
			frac = 0
			continue
		}
		break
	}
	if i != len(b) || digits == 0 || m > 1<<53 || frac > 22 {
		return strconv.ParseFloat(string(b), 64)
	}
	f := float64(m)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, nil
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
