package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// BenchmarkKmeansC: assign2's algorithm (assign2Branches) written in C
// (jobs/kmeans-c's, driven by testdata/plain2.c), compiled by clang to
// wasm32-wasi and run under wazero's compiler, against the same C
// compiled natively (clang -O2): how much of
// BenchmarkKmeansVsNative's gap is wazero's own and how much Go's wasm
// code generator's. Each program reports its best of seven passes over the
// benchmark's points; both agree with assign2, run the same way, on the
// counts and sums, bit for bit.
func BenchmarkKmeansC(b *testing.B) {
	in := benchPoints()
	wasm := wasmtest.C(b, "testdata/plain2.c") // skipped without clang, outside CI
	native := filepath.Join(b.TempDir(), "plain2")
	if msg, err := exec.Command("clang", "-O2", "-o", native, "testdata/plain2.c").CombinedOutput(); err != nil {
		b.Fatalf("clang -O2 testdata/plain2.c: %v\n%s", err, msg)
	}
	want := plain2Only(b, in)
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	mod, err := r.CompileModule(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	var bestNative, bestWasm float64
	for b.Loop() {
		var nout, wout bytes.Buffer
		cmd := exec.Command(native)
		cmd.Stdin, cmd.Stdout = bytes.NewReader(in), &nout
		if err := cmd.Run(); err != nil {
			b.Fatalf("native plain2: %v", err)
		}
		cfg := wazero.NewModuleConfig().WithName("").WithStdin(bytes.NewReader(in)).WithStdout(&wout).WithSysNanotime()
		if _, err := r.InstantiateModule(ctx, mod, cfg); err != nil {
			b.Fatalf("plain2.wasm: %v", err)
		}
		bestNative = max(bestNative, plain2Rate(b, "native", nout.String(), want))
		bestWasm = max(bestWasm, plain2Rate(b, "wasm", wout.String(), want))
	}
	b.ReportMetric(bestNative, "native-MB/s")
	b.ReportMetric(bestWasm, "wasm-MB/s")
	b.ReportMetric(bestWasm/bestNative, "wasm/native")
	b.ReportMetric(0, "ns/op")
}

// plain2Only runs assign2 over in as plain2.c does (a line it leaves is
// skipped; in is padded with zeros, as plain2.c's buffer is, so that every
// line has assign2's window) and returns the counts and sums as plain2.c
// prints them.
func plain2Only(tb testing.TB, in []byte) string {
	if err := setParams(benchParams); err != nil {
		tb.Fatal(err)
	}
	clear(counts)
	clear(sums)
	n := len(in)
	in = append(in[:n:n], make([]byte, plainWindow)...)
	for pos := 0; pos < n; {
		if pos, _ = assign2(in, pos, centroids, counts, sums); pos < n {
			if nl := bytes.IndexByte(in[pos:n], '\n'); nl >= 0 {
				pos += nl + 1
			} else {
				pos = n
			}
		}
	}
	s := fmt.Sprintf("%d %d %d\n", counts[0], counts[1], counts[2])
	for i, x := range sums {
		s += strconv.FormatFloat(x, 'g', 17, 64)
		if i < len(sums)-1 {
			s += " "
		}
	}
	return s + "\n"
}

// plain2Rate returns the MB/s plain2.c printed, after checking that the
// rest of what it printed is want.
func plain2Rate(tb testing.TB, side, out, want string) float64 {
	rate, rest, _ := strings.Cut(out, " MB/s\n")
	mbs, err := strconv.ParseFloat(rate, 64)
	if err != nil || rest != want {
		tb.Fatalf("%s plain2 printed %q; want a rate, then\n%s", side, out, want)
	}
	return mbs
}
