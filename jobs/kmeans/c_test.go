package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// The C mapper (jobs/kmeans-c) against this job: every map task's output,
// or its failure, must be this job's map function's, run natively, for any
// chunk; and a whole job with the C mapper and this module as reducer must
// give this job's output bit for bit.

// cMapper compiles jobs/kmeans-c (skipped without clang, outside CI) on the
// shared runner, as a built-in runs: trusted.
func cMapper(tb testing.TB) (*runner.Runner, string) {
	tb.Helper()
	r := wasmtest.Runner(tb)
	sha, err := r.CompileTrusted(tb.Context(), wasmtest.C(tb, "../kmeans-c/main.c"))
	if err != nil {
		tb.Fatal(err)
	}
	return r, sha
}

// argsParams is the job's parameters as the C mapper takes them.
func argsParams(centroids []string) []byte {
	return fmt.Appendf(nil, `{"args": [%s]}`, `"`+strings.Join(centroids, `", "`)+`"`)
}

// mapC runs one map task of the C mapper over chunk: its output as sorted
// "key<TAB>value" lines, its points counter, or its error.
func mapC(tb testing.TB, r *runner.Runner, sha string, centroids []string, chunk []byte, offset uint64) (string, int64, error) {
	tb.Helper()
	params, err := runner.CommandParams(argsParams(centroids))
	if err != nil {
		tb.Fatal(err)
	}
	res, err := r.Map(tb.Context(), runner.Task{ID: "kmeans-c", Module: sha, Params: params}, abi.Chunk{Offset: offset, Data: chunk})
	if err != nil {
		return "", 0, err
	}
	pairs, err := abi.DecodePairs(res.Pairs)
	if err != nil {
		tb.Fatal(err)
	}
	return pairLines(pairs), res.Counters.Get("kmeans.points"), nil
}

// mapGo runs this job's map function natively over chunk, as mapC does
// (the points it assigned in place of the counter).
func mapGo(tb testing.TB, centroids []string, chunk []byte) (string, int64, error) {
	tb.Helper()
	if err := setParams(argsParams(centroids)); err != nil {
		tb.Fatal(err)
	}
	var pairs []abi.Pair
	err := assign(chunk, func(k, v []byte) { pairs = append(pairs, abi.Pair{Key: slices.Clone(k), Value: slices.Clone(v)}) })
	var n int64
	for _, c := range counts {
		n += c
	}
	return pairLines(pairs), n, err
}

func pairLines(pairs []abi.Pair) string {
	slices.SortFunc(pairs, abi.Pair.Compare)
	var b strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&b, "%s\t%s\n", p.Key, p.Value)
	}
	return b.String()
}

// sameMap checks that the C mapper and this job agree on chunk.
func sameMap(t *testing.T, r *runner.Runner, sha string, centroids []string, chunk []byte) {
	t.Helper()
	want, wantN, wantErr := mapGo(t, centroids, chunk)
	got, gotN, gotErr := mapC(t, r, sha, centroids, chunk, 0)
	switch {
	case (wantErr != nil) != (gotErr != nil):
		t.Fatalf("chunk %q, centroids %q: Go's error %v, C's %v", chunk, centroids, wantErr, gotErr)
	case wantErr == nil && (got != want || gotN != wantN):
		t.Fatalf("chunk %q, centroids %q:\nC  (%d points): %q\nGo (%d points): %q", chunk, centroids, gotN, got, wantN, want)
	}
}

// cCases are chunks whose numbers take every path of both parsers: the
// fast 2-D path, Clinger's, strtod's (long digits, exponents, hex),
// specials, underscores, white space of every kind, blank lines, a last
// line without its newline, and lines either side must refuse.
var cCases = []string{
	"1,2\n3,4\n", "-1.5,2.25\n9.75,-3.125", " -1.5 ,\t2.25\r\n3,4\n", "\n\n  \n1,1\n\n",
	"10.123456789012345,-0.40184783935546875\n", "1e5,2\n", "1E-5,2e+3\n", "0x1p3,0X1.8P-1\n",
	"1_000,2\n", "0x1_0p0,1e1_0\n", "inf,-inf\n", "+Infinity,nan\n", "nan,NaN\n",
	"1.00000000000000011102230246251565404236316680908203125,2\n", "123456789012345678901234567890,1\n",
	"0.0000000000000000000001,1e-400\n", "-0,-0\n-0,-0\n", "4.9e-324,2.2250738585072014e-308\n",
	"1\u00a0,\u20002\u3000\n", "\u0085 1,2 \u2029\n", "9007199254740993,9007199254740992\n",
	"1234567.1234567891234,2\n", "12345678,1\n", "+.5,-.5\n", "5.,.5\n",
	// Refused by both.
	"1,,2\n", "1,2,\n", "1e,2\n", "1e+,2\n", ".,1\n", "0x1,2\n", "0x,1\n", "_1,2\n", "1_,2\n", "1__0,2\n",
	"-nan,1\n", "infx,1\n", "infinit,1\n", "1e400,2\n", "0x1p1024,1\n", "1,2 x\n", "\u0663,4\n", "1\x00,2\n",
	"1,2,3\n", "1\n", "a,b\n", "1.2.3,4\n",
}

// TestKmeansCMatchesGo: map tasks over cCases and over the benchmark's
// kind of points, in 1, 2 and 3 dimensions.
func TestKmeansCMatchesGo(t *testing.T) {
	r, sha := cMapper(t)
	two := []string{"1,1", "9,9", "-4,7"}
	for _, c := range cCases {
		sameMap(t, r, sha, two, []byte(c))
	}
	var pts bytes.Buffer
	for _, p := range wasmtest.ClusterPoints(20_000) {
		fmt.Fprintf(&pts, "%v,%v\n", p[0], p[1])
	}
	sameMap(t, r, sha, two, pts.Bytes())
	sameMap(t, r, sha, []string{"0", "1e3", "-2.5"}, []byte("1\n2000\n-7\n0x10p0\n1,2\n"))
	sameMap(t, r, sha, []string{"0,0,0", "1,1,1"}, []byte("1,2,3\n0.5, 0.25 ,0.125\n-1,-1,-1\n"))
	sameMap(t, r, sha, []string{"0,0,0", "1,1,1"}, []byte("1,2\n"))
	sameMap(t, r, sha, []string{"nan,nan", "1,1"}, []byte("1,2\n3,4\n"))
	// Random numbers of every length and exponent, one a task, so that
	// each is compared on its own: strtod's against strconv's.
	rng := rand.New(rand.NewPCG(14, 14))
	for range 600 {
		digits := make([]byte, 1+rng.IntN(30))
		for i := range digits {
			digits[i] = byte('0' + rng.IntN(10))
		}
		num := string(digits)
		if p := rng.IntN(len(digits) + 1); p < len(digits) {
			num = num[:p] + "." + num[p:]
		}
		switch rng.IntN(3) {
		case 0:
			num += fmt.Sprintf("e%d", rng.IntN(700)-350)
		case 1:
			num = fmt.Sprintf("0x%x.%xp%d", rng.Uint64(), rng.Uint32(), rng.IntN(2200)-1100)
		}
		sameMap(t, r, sha, []string{"0"}, []byte(num+"\n"))
	}
}

// TestKmeansCBadArguments: centroids the Go job refuses, the C mapper
// refuses too, and it runs only as a mapper.
func TestKmeansCBadArguments(t *testing.T) {
	r, sha := cMapper(t)
	for _, cs := range [][]string{{"1,x"}, {"1,2", "3"}, {""}, {"1e400,1"}} {
		if err := setParams(argsParams(cs)); err == nil {
			t.Fatalf("Go job took centroids %q", cs)
		}
		if _, _, err := mapC(t, r, sha, cs, []byte("1,2\n"), 0); err == nil {
			t.Fatalf("C mapper took centroids %q", cs)
		}
	}
	params, _ := runner.CommandParams([]byte(`{"args": []}`))
	if _, err := r.Map(t.Context(), runner.Task{ID: "none", Module: sha, Params: params}, abi.Chunk{Data: []byte("1,2\n")}); err == nil || !strings.Contains(err.Error(), "no centroids") {
		t.Fatalf("no centroids: %v", err)
	}
	if _, err := r.Reduce(t.Context(), runner.Task{ID: "reduce", Module: sha, Params: params}, abi.EncodeGroups(nil)); err == nil || !strings.Contains(err.Error(), "a mapper only") {
		t.Fatalf("as a reducer: %v", err)
	}
	_, _, err := mapC(t, r, sha, []string{"1,1"}, []byte("1,2\n3,x\n"), 1000)
	if err == nil || !strings.Contains(err.Error(), "line at 1004: x is not a number") {
		t.Fatalf("a bad line: %v, want its offset in the whole input", err)
	}
}

// TestKmeansCJob: whole jobs, the Go module alone and the C mapper with
// the Go module as reducer, over 64 KiB chunks (many partials per
// centroid, summed in the reducer in the order of their text): the same
// output, bit for bit, and the same number of points.
func TestKmeansCJob(t *testing.T) {
	r, mapper := cMapper(t)
	reducer, err := r.CompileTrusted(t.Context(), wasmtest.Module(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for i, p := range wasmtest.ClusterPoints(30_000) {
		if i%1000 == 7 {
			fmt.Fprintf(&in, " %g , %e\r\n", p[0], p[1]) // the general paths
			continue
		}
		fmt.Fprintf(&in, "%v,%v\n", p[0], p[1])
	}
	centroids := []string{"1,1", "9,9", "-4,7", "100,100"}
	opts := driver.Options{ChunkSize: 64 << 10, Reducers: 2, Parallelism: 2}
	want, err := driver.Run(t.Context(), r.Executor("kmeans", reducer, argsParams(centroids)), in.Bytes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	x, err := r.JobExecutor(t.Context(), "kmeans-c", mapper, reducer, argsParams(centroids))
	if err != nil {
		t.Fatal(err)
	}
	got, err := driver.Run(t.Context(), x, in.Bytes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := wasmtest.Diff(driver.Output{Pairs: got.Pairs}, driver.Output{Pairs: want.Pairs}); d != "" {
		t.Fatalf("C mapper + Go reducer vs the Go job: %s", d)
	}
	if len(want.Pairs) != 3 {
		t.Fatalf("%d centroids got points, want 3 (the fourth is far from all)", len(want.Pairs))
	}
	if n, m := got.Counters.Get("kmeans.points"), want.Counters.Get("points"); n != 30_000 || m != n {
		t.Fatalf("points: C mapper %d, Go job %d, want 30000", n, m)
	}
}

// FuzzKmeansC: for any chunk, the C mapper and this job's map function
// give the same partials or both fail, with 1-, 2- and 3-D centroids. The
// seeds are cCases and, one number a line, FuzzParseFloat's.
func FuzzKmeansC(f *testing.F) {
	for _, c := range cCases {
		f.Add([]byte(c), uint8(2))
	}
	for _, s := range []string{"0", "-0", "1.5", ".5", "5.", ".", "-", "", "1e3", "9007199254740993", "1_0", "inf", "0x1p3",
		"1.2.3", "0.9999999999999999999", "7.456541061401367e-05", "1234567890123456789.", ".1234567890123456789"} {
		f.Add([]byte(s+"\n"), uint8(1))
	}
	r, sha := cMapper(f)
	f.Fuzz(func(t *testing.T, chunk []byte, dims uint8) {
		centroids := [][]string{{"0", "1e3", "-2.5"}, {"1,1", "9,9", "-4,7"}, {"0,0,0", "1,-1,0.5"}}[dims%3]
		sameMap(t, r, sha, centroids, chunk)
	})
}
