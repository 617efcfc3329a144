// Command kmeans is a tabreduce job: one iteration of k-means. Input lines are
// points as comma-separated numbers; the parameters give the current
// centroids, {"centroids": [[x, y], ...]}, or, as the C mapper kmeans-c
// takes them (jobs/kmeans-c: this module is then its reducer),
// {"args": ["x,y", ...]}, each a point as an input line writes it. Each point goes to its nearest
// centroid (squared Euclidean distance, lowest index on ties); the output maps
// each centroid index (4 digits) to the mean of its points, comma-separated,
// printed in the shortest form that reads back exactly.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Job is the k-means job.
var Job = mr.Job{Init: setParams, Map: assign, Combine: mr.CombineFunc(addPartials), Reduce: means}

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}

var (
	// centroids are the parameters' centroids one after another: centroid
	// i's coordinates are centroids[i*dim : (i+1)*dim].
	centroids []float64
	dim       int
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
		Args      []string    `json:"args"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return fmt.Errorf("kmeans parameters: %w", err)
	}
	if p.Centroids == nil {
		for i, a := range p.Args {
			c, err := parsePoint(nil, []byte(a))
			if err != nil {
				return fmt.Errorf("kmeans parameters: centroid %d: %w", i, err)
			}
			p.Centroids = append(p.Centroids, c)
		}
	}
	if len(p.Centroids) == 0 {
		return errors.New(`kmeans parameters: "centroids" (or "args") must list at least one point`)
	}
	for i, c := range p.Centroids {
		if len(c) != len(p.Centroids[0]) || len(c) == 0 {
			return fmt.Errorf("kmeans parameters: centroid %d has %d dimensions, centroid 0 has %d", i, len(c), len(p.Centroids[0]))
		}
	}
	dim = len(p.Centroids[0])
	centroids = centroids[:0]
	for _, c := range p.Centroids {
		centroids = append(centroids, c...)
	}
	keys = make([][]byte, len(p.Centroids))
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "%04d", i)
	}
	counts = make([]int64, len(p.Centroids))
	sums = make([]float64, len(centroids))
	return nil
}

// assign adds each point of the chunk to the count and sums of its nearest
// centroid, then emits one partial per centroid that got points. Summing in
// the map function, rather than emitting a partial per point for the
// combiner, keeps float formatting and parsing out of the per-point path.
// A 2-D line of plain decimals is read by assign2, any line of plain
// decimals by scanPoint in one pass, and any other line by parsePoint,
// which accepts what strconv.ParseFloat does.
func assign(chunk []byte, emit mr.Emit) error {
	clear(counts)
	clear(sums)
	var n int64
	for pos := 0; pos < len(chunk); {
		if dim == 2 {
			var added int64
			pos, added = assign2(chunk, pos, centroids, counts, sums)
			n += added
		}
		var next int
		var ok bool
		if point, next, ok = scanPoint(chunk, pos, point[:0]); !ok {
			end := bytes.IndexByte(chunk[pos:], '\n')
			next = pos + end + 1
			if end < 0 {
				end, next = len(chunk)-pos, len(chunk)
			}
			line := chunk[pos : pos+end]
			if len(bytes.TrimSpace(line)) == 0 {
				pos = next
				continue
			}
			var err error
			if point, err = parsePoint(point[:0], line); err != nil {
				return fmt.Errorf("line at %d: %w", mr.ChunkOffset()+uint64(pos), err)
			}
		}
		if len(point) != dim {
			return fmt.Errorf("line at %d: %d dimensions, the centroids have %d", mr.ChunkOffset()+uint64(pos), len(point), dim)
		}
		i := nearest(point, centroids)
		counts[i]++
		for j, x := range point {
			sums[i*dim+j] += x
		}
		n++
		pos = next
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

// nearest2 is nearest for a 2-D point (x, y), small enough to be inlined.
func nearest2(x, y float64, cs []float64) int {
	best, bestD := 0, 0.0
	for i := 0; i+1 < len(cs); i += 2 {
		dx, dy := x-cs[i], y-cs[i+1]
		if d := float64(dx*dx) + float64(dy*dy); d < bestD || i == 0 {
			best, bestD = i, d
		}
	}
	return best >> 1
}

// nearest returns the index of the centroid closest to p (squared
// Euclidean distance; the lowest index on ties, and centroid 0 when every
// distance is NaN) among cs, the centroids' coordinates one after another.
// Each square is rounded on its own (no fused multiply-add), so that
// every platform agrees.
func nearest(p, cs []float64) int {
	if len(p) == 2 { // the common case, without the inner loop
		return nearest2(p[0], p[1], cs)
	}
	best, bestD := 0, math.NaN()
	for i := 0; i+len(p) <= len(cs); i += len(p) {
		d := 0.0
		for j, x := range p {
			diff := x - cs[i+j]
			d += float64(diff * diff)
		}
		if i == 0 || d < bestD {
			best, bestD = i/len(p), d
		}
	}
	return best
}

// A partial is "count,sum1,sum2,...", each sum in 17 significant digits
// (enough to read back exactly), as C's printf("%.17g") writes them too:
// the C mapper kmeans-c emits the very same partials, so the reducer sums
// the same strings in the same order and the two jobs' outputs agree bit
// for bit.
func appendPartial(dst []byte, n int64, sums []float64) []byte {
	dst = strconv.AppendInt(dst, n, 10)
	for _, s := range sums {
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, s, 'g', 17, 64)
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
		first := sums == nil
		if first {
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
			if first {
				sums[i] = x // not 0 + x, which would turn a sum of -0 into 0
			} else {
				sums[i] += x
			}
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
