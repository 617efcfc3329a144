// Command primes is a tabreduce job: each input line is a range "lo hi"
// (inclusive, decimal); it outputs the range as "lo-hi" → how many primes it
// holds. It is compute-bound on a tiny input.
package main

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Job is the primes job.
var Job = mr.Job{Map: mapRanges, Reduce: mr.Sum{}.Combine}

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}

var tested = mr.Counter("numbers")

func mapRanges(chunk []byte, emit mr.Emit) error {
	return mr.ForEachLine(chunk, func(line []byte, offset uint64) error {
		f := bytes.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) != 2 {
			return errors.New("line at " + strconv.FormatUint(offset, 10) + `: want "lo hi", got ` + strconv.Quote(string(line)))
		}
		lo, err1 := strconv.ParseUint(string(f[0]), 10, 64)
		hi, err2 := strconv.ParseUint(string(f[1]), 10, 64)
		if err1 != nil || err2 != nil || lo > hi {
			return errors.New("line at " + strconv.FormatUint(offset, 10) + ": bad range " + strconv.Quote(string(line)))
		}
		tested.Add(int64(hi - lo + 1))
		emit(strconv.AppendUint(append(strconv.AppendUint(nil, lo, 10), '-'), hi, 10), strconv.AppendInt(nil, int64(CountPrimes(lo, hi)), 10))
		return nil
	})
}

// CountPrimes counts the primes in [lo, hi] by trial division with a 6k±1
// wheel.
func CountPrimes(lo, hi uint64) int {
	n := 0
	for x := lo; x <= hi && x >= lo; x++ {
		if isPrime(x) {
			n++
		}
	}
	return n
}

func isPrime(x uint64) bool {
	if x < 4 {
		return x >= 2
	}
	if x%2 == 0 || x%3 == 0 {
		return false
	}
	for d := uint64(5); d*d <= x; d += 6 {
		if x%d == 0 || x%(d+2) == 0 {
			return false
		}
	}
	return true
}
