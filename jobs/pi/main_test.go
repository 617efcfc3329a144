package main

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const pkg = "github.com/tabreduce/tabreduce/jobs/pi"

// splitmix64 is the oracle's own copy of the generator, written from the
// reference description with math/big for the circle test.
func oracleInside(seed, n uint64) uint64 {
	var in uint64
	r2 := new(big.Int).Lsh(big.NewInt(1), 62)
	for i := uint64(1); i <= n; i++ {
		z := seed + i*0x9E3779B97F4A7C15
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z = z ^ (z >> 31)
		x := new(big.Int).SetUint64(z >> 33)
		y := new(big.Int).SetUint64(z & (1<<31 - 1))
		d := new(big.Int).Add(x.Mul(x, x), y.Mul(y, y))
		if d.Cmp(r2) < 0 {
			in++
		}
	}
	return in
}

func TestPi(t *testing.T) {
	var in strings.Builder
	var inside, total uint64
	for seed := uint64(1); seed <= 40; seed++ {
		n := 2000 + seed*37
		fmt.Fprintf(&in, "%d %d\n", seed, n)
		inside += oracleInside(seed, n)
		total += n
	}
	pi := 4 * float64(inside) / float64(total)
	if math.Abs(pi-math.Pi) > 0.05 {
		t.Fatalf("oracle estimate %v is far from π", pi)
	}
	want := driver.Output{Pairs: wasmtest.Pairs(map[string]string{
		"inside": strconv.FormatUint(inside, 10),
		"total":  strconv.FormatUint(total, 10),
		"pi":     strconv.FormatFloat(pi, 'f', 10, 64),
	})}
	opts := driver.Options{ChunkSize: 64, Reducers: 3}
	wasmtest.Check(t, pkg, Job, []byte(in.String()), nil, opts, wasmtest.Equals(want))
}
