package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// referenceAssign is what assign computes, by the plainest means: each
// line split at commas, each field trimmed and read by strconv.ParseFloat,
// the nearest centroid by nearest.
func referenceAssign(chunk []byte) ([]int64, []float64, error) {
	counts, sums := make([]int64, len(centroids)/dim), make([]float64, len(centroids))
	for line := range bytes.Lines(chunk) {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var p []float64
		for field := range bytes.SplitSeq(line, []byte{','}) {
			x, err := strconv.ParseFloat(string(bytes.TrimSpace(field)), 64)
			if err != nil {
				return nil, nil, err
			}
			p = append(p, x)
		}
		if len(p) != dim {
			return nil, nil, errors.New("dimensions")
		}
		i := nearest(p, centroids)
		counts[i]++
		for j, x := range p {
			sums[i*dim+j] += x
		}
	}
	return counts, sums, nil
}

// checkAssign fails unless assign's counts and sums for chunk are
// referenceAssign's, bit for bit, and each fails on the same chunks.
func checkAssign(t *testing.T, chunk []byte) {
	t.Helper()
	if err := setParams([]byte(`{"centroids": [[1, 1], [9, 9], [-4, 7]]}`)); err != nil {
		t.Fatal(err)
	}
	checkAssign2Forms(t, chunk, centroids)
	err := assign(chunk, func(_, _ []byte) {})
	wantCounts, wantSums, werr := referenceAssign(chunk)
	if (err == nil) != (werr == nil) {
		t.Fatalf("assign(%q): error %v; reference: %v", chunk, err, werr)
	}
	if err != nil {
		return
	}
	for i := range wantCounts {
		if counts[i] != wantCounts[i] {
			t.Fatalf("assign(%q): counts %v, reference %v", chunk, counts, wantCounts)
		}
	}
	for i := range wantSums {
		if !sameFloat(sums[i], wantSums[i]) {
			t.Fatalf("assign(%q): sums %v, reference %v", chunk, sums, wantSums)
		}
	}
}

// checkAssign2Forms fails unless assign2Masks and assign2Branches read
// the same lines of chunk, restarted after each line they leave, to the
// same counts and sums, bit for bit.
func checkAssign2Forms(t *testing.T, chunk []byte, cs []float64) {
	t.Helper()
	k := len(cs) / 2
	for pos := 0; ; {
		mc, ms := make([]int64, k), make([]float64, 2*k)
		bc, bs := make([]int64, k), make([]float64, 2*k)
		mnext, madded := assign2Masks(chunk, pos, cs, mc, ms)
		bnext, badded := assign2Branches(chunk, pos, cs, bc, bs)
		if mnext != bnext || madded != badded {
			t.Fatalf("assign2 on %q from %d: masks stop at %d after %d points, branches at %d after %d", chunk, pos, mnext, madded, bnext, badded)
		}
		for i := range mc {
			if mc[i] != bc[i] || math.Float64bits(ms[2*i]) != math.Float64bits(bs[2*i]) || math.Float64bits(ms[2*i+1]) != math.Float64bits(bs[2*i+1]) {
				t.Fatalf("assign2 on %q from %d: masks sum %v %v, branches %v %v", chunk, pos, mc, ms, bc, bs)
			}
		}
		end := bytes.IndexByte(chunk[mnext:], '\n')
		if len(chunk)-mnext < plainWindow || end < 0 {
			return
		}
		pos = mnext + end + 1
	}
}

// pointLines are lines of each form the readers tell apart: assign2's
// plain 2-D decimals (short, long, 17 and 19 digits, with and without a
// point or sign), and what sends a line to the general path (spaces, a
// '+', an exponent, 8 digits before the point, 20 digits, CRLF, a blank
// line, the values Eisel–Lemire cannot round alone).
var pointLines = []string{
	"1.5,2.25\n", "-3,4\n", "0.12345678901234567,-9.8765432109876543\n", "1234567.1234567890123,-0.0000000000000000001\n",
	"5.,.5\n", "-.5,-0\n", "0,0\n", "7.456541061401367,1.1535186767578125\n", "-0.40184783935546875,10.123456789012345\n",
	" 1.5 , 2.5 \n", "+1,2\n", "1e3,2\n", "12345678.5,1\n", "1.2345678901234567891,2\n", "1,2\r\n", "\n",
	"9007199254740993,9007199254740992\n", "0.9999999999999999999,1.0000000000000000001\n", "1.00000000000000011102230246251565404236316680908203125,3\n",
	"-9.800570002100207000,0\n", // 19 digits, above 2^63
}

// FuzzAssign: whichever path reads each line, assign sums what the plain
// reference sums.
func FuzzAssign(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		var chunk []byte
		for range 12 {
			chunk = append(chunk, pointLines[r.IntN(len(pointLines))]...)
		}
		f.Add(chunk)
	}
	f.Add(bytes.Repeat([]byte("1.5,2.25\n"), 10))
	f.Add(bytes.Repeat([]byte("-3.0000000000000004,4.440892098500626e-16\n"), 4))
	f.Add(append(bytes.Repeat([]byte("1,2\n"), 20), "1,2"...))
	f.Add(append(bytes.Repeat([]byte("1,2\n"), 20), "1,x\n"...))
	f.Fuzz(checkAssign)
}

// TestAssignRandomPoints: chunks of random decimals of 1–19 digits, as
// lines of two, with now and then a line of another form, sum as the
// reference sums them.
func TestAssignRandomPoints(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		var chunk []byte
		for range 200 {
			if r.IntN(20) == 0 {
				chunk = append(chunk, pointLines[r.IntN(len(pointLines))]...)
				continue
			}
			chunk = append(chunk, decimalText(r.Uint64()>>r.IntN(64), r.IntN(22), r.IntN(2) == 0)...)
			chunk = append(chunk, ',')
			chunk = append(chunk, decimalText(r.Uint64()>>r.IntN(64), r.IntN(22), r.IntN(2) == 0)...)
			chunk = append(chunk, '\n')
		}
		checkAssign(t, chunk)
	}
}

// TestAssign2ReadsPlainLines: assign2 itself reads the benchmark's lines
// (else the tests above would pass on the general path alone), up to the
// last plainWindow bytes, and stops at the first line of another form.
func TestAssign2ReadsPlainLines(t *testing.T) {
	if err := setParams([]byte(`{"centroids": [[1, 1], [9, 9], [-4, 7]]}`)); err != nil {
		t.Fatal(err)
	}
	var chunk []byte
	for _, p := range wasmtest.ClusterPoints(1000) { // as the benchmark's
		chunk = fmt.Appendf(chunk, "%v,%v\n", p[0], p[1])
	}
	// Restarted after each line it leaves (an exponent, a value exactly
	// halfway for Eisel–Lemire's first product), it reads all the others.
	pos, read, left := 0, int64(0), 0
	for {
		next, added := assign2(chunk, pos, centroids, counts, sums)
		read += added
		if len(chunk)-next < plainWindow {
			pos = next
			break
		}
		left++
		pos = next + bytes.IndexByte(chunk[next:], '\n') + 1
	}
	if lines := bytes.Count(chunk[:pos], []byte{'\n'}); int(read)+left != lines || left > 10 {
		t.Fatalf("assign2 read %d of %d lines and left %d", read, lines, left)
	}
	mixed := append(bytes.Repeat([]byte("1.5,2.25\n"), 5), "+1,2\n"...)
	mixed = append(mixed, chunk...)
	if next, added := assign2(mixed, 0, centroids, counts, sums); next != 45 || added != 5 {
		t.Fatalf("assign2 on a '+' line: stopped at %d after %d points, want 45 and 5", next, added)
	}
}

// TestAssign2Nearest: assign2Masks' search by the bits of the distances
// chooses as nearest's float comparisons do, ties, zeros, infinities and
// NaNs in the centroids included.
func TestAssign2Nearest(t *testing.T) {
	// A NaN with its sign set as well: wasm leaves a NaN's sign open.
	special := []float64{0, math.Copysign(0, -1), 1, -1, 2, 0.5, math.Inf(1), math.Inf(-1), math.NaN(), -math.NaN(), 1e300, -1e300, 5e-324}
	coords := []string{"0", "-0", "1", "-1", "2", "-2", "0.5", "3", "-3", "0.000001"}
	r := rand.New(rand.NewPCG(7, 8))
	for range 100_000 {
		k := 1 + r.IntN(5)
		cs := make([]float64, 2*k)
		for i := range cs {
			if r.IntN(3) == 0 {
				cs[i] = special[r.IntN(len(special))]
			} else {
				cs[i] = float64(r.IntN(7) - 3) // small integers: many ties
			}
		}
		xs, ys := coords[r.IntN(len(coords))], coords[r.IntN(len(coords))]
		chunk := append([]byte(xs+","+ys+"\n"), bytes.Repeat([]byte{' '}, plainWindow)...)
		counts, sums := make([]int64, k), make([]float64, 2*k)
		if _, added := assign2(chunk, 0, cs, counts, sums); added != 1 {
			t.Fatalf("assign2 did not read %q", chunk)
		}
		checkAssign2Forms(t, chunk, cs)
		x, _ := strconv.ParseFloat(xs, 64)
		y, _ := strconv.ParseFloat(ys, 64)
		if want := nearest([]float64{x, y}, cs); counts[want] != 1 {
			t.Fatalf("assign2 put (%s, %s) at %v among %v, nearest is %d", xs, ys, counts, cs, want)
		}
	}
}
