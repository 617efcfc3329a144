package main

import (
	"fmt"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// BenchmarkPrimesVsNative counts the primes below 3,000,000 in 30 ranges:
// the module under wazero (trusted, one range per map task) against a plain
// native loop over the same ranges with the same trial division.
func BenchmarkPrimesVsNative(b *testing.B) {
	var in []byte
	var ranges [][2]uint64
	for lo := uint64(0); lo < 3_000_000; lo += 100_000 {
		ranges = append(ranges, [2]uint64{lo, lo + 99_999})
		in = fmt.Appendf(in, "%d %d\n", lo, lo+99_999)
	}
	wasmtest.VersusNative(b, pkg, in, nil, driver.Options{ChunkSize: 1}, false, func([]byte) {
		n := 0
		for _, r := range ranges {
			n += CountPrimes(r[0], r[1])
		}
		if n != 216816 {
			b.Fatalf("native count %d", n)
		}
	})
}
