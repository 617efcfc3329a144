// Command pi is a tabreduce job: a Monte Carlo estimate of π. Each input line
// "seed n" asks for n points drawn from a splitmix64 generator seeded with
// seed; the output is "inside", "total" and "pi" (4·inside/total, 10
// decimals). Points are integers on a 2³¹ grid, so the result is exact and
// deterministic on every platform.
package main

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Job is the pi job.
var Job = mr.Job{Map: mapSeeds, Combine: mr.CombineFunc(sumSamples), Reduce: estimate}

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}

var samplesKey = []byte("samples")

func mapSeeds(chunk []byte, emit mr.Emit) error {
	return mr.ForEachLine(chunk, func(line []byte, offset uint64) error {
		f := bytes.Fields(line)
		if len(f) == 0 {
			return nil
		}
		seed, err1 := strconv.ParseUint(string(bytesAt(f, 0)), 10, 64)
		n, err2 := strconv.ParseUint(string(bytesAt(f, 1)), 10, 64)
		if len(f) != 2 || err1 != nil || err2 != nil {
			return errors.New("line at " + strconv.FormatUint(offset, 10) + `: want "seed n", got ` + strconv.Quote(string(line)))
		}
		emit(samplesKey, appendSample(nil, Inside(seed, n), n))
		return nil
	})
}

func bytesAt(f [][]byte, i int) []byte {
	if i < len(f) {
		return f[i]
	}
	return nil
}

// Inside draws n points from the generator seeded with seed and counts those
// inside the quarter circle of radius 2³¹.
func Inside(seed, n uint64) uint64 {
	const r = 1 << 31
	s := seed
	var in uint64
	for range n {
		s += 0x9E3779B97F4A7C15
		z := s
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		z ^= z >> 31
		x, y := z>>33, z&(r-1)
		if x*x+y*y < r*r {
			in++
		}
	}
	return in
}

// sums adds up "inside total" values.
func sums(values mr.Values) (inside, total uint64, err error) {
	for values.Next() {
		a, b, ok := bytes.Cut(values.Value(), []byte{' '})
		i, err1 := strconv.ParseUint(string(a), 10, 64)
		n, err2 := strconv.ParseUint(string(b), 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return 0, 0, errors.New("bad sample " + strconv.Quote(string(values.Value())))
		}
		inside += i
		total += n
	}
	return inside, total, nil
}

func sumSamples(key []byte, values mr.Values, emit mr.Emit) error {
	inside, total, err := sums(values)
	if err != nil {
		return err
	}
	emit(key, appendSample(nil, inside, total))
	return nil
}

func estimate(_ []byte, values mr.Values, emit mr.Emit) error {
	inside, total, err := sums(values)
	if err != nil {
		return err
	}
	emit([]byte("inside"), strconv.AppendUint(nil, inside, 10))
	emit([]byte("total"), strconv.AppendUint(nil, total, 10))
	if total > 0 {
		emit([]byte("pi"), strconv.AppendFloat(nil, 4*float64(inside)/float64(total), 'f', 10, 64))
	}
	return nil
}

// appendSample appends "inside total".
func appendSample(dst []byte, inside, total uint64) []byte {
	return strconv.AppendUint(append(strconv.AppendUint(dst, inside, 10), ' '), total, 10)
}
