package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/mr"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const pkg = "github.com/tabreduce/tabreduce/jobs/primes"

// sieve is the oracle: a plain sieve of Eratosthenes up to max.
func sieve(max int) []bool {
	composite := make([]bool, max+1)
	composite[0], composite[1] = true, true
	for i := 2; i*i <= max; i++ {
		if !composite[i] {
			for j := i * i; j <= max; j += i {
				composite[j] = true
			}
		}
	}
	return composite
}

func TestPrimes(t *testing.T) {
	ranges := [][2]int{{0, 10}, {1, 1}, {2, 2}, {10, 100}, {1000, 20000}, {99990, 100000}, {0, 200000}}
	composite := sieve(200000)
	var in strings.Builder
	m := map[string]string{}
	total := 0
	for _, r := range ranges {
		fmt.Fprintf(&in, "%d %d\n", r[0], r[1])
		n := 0
		for x := r[0]; x <= r[1]; x++ {
			if !composite[x] {
				n++
			}
		}
		m[fmt.Sprintf("%d-%d", r[0], r[1])] = strconv.Itoa(n)
		total += r[1] - r[0] + 1
	}
	want := driver.Output{Pairs: wasmtest.Pairs(m), Counters: abi.Counters{{Name: "numbers", Value: int64(total)}}}
	opts := driver.Options{ChunkSize: 16, Reducers: 2}
	wasmtest.Check(t, pkg, Job, []byte(in.String()), nil, opts, wasmtest.Equals(want))
}

func TestPrimesBadInput(t *testing.T) {
	for _, in := range []string{"1\n", "5 2\n", "a b\n"} {
		if _, err := mr.RunLocal(Job, []byte(in), nil); err == nil {
			t.Errorf("input %q: no error", in)
		}
	}
}
