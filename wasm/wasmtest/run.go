package wasmtest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

var (
	runnerOnce sync.Once
	shared     *runner.Runner
	sharedErr  error
)

// Runner returns a runner shared by the whole test binary, with the shared
// compilation cache and default limits. It lives until the process exits.
func Runner(tb testing.TB) *runner.Runner {
	tb.Helper()
	runnerOnce.Do(func() {
		shared, sharedErr = runner.New(context.Background(), runner.Config{CacheDir: CacheDir()})
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// RunModule builds the Go job package pkg to wasm, compiles it in the shared
// runner and runs a whole job over input with the driver.
func RunModule(tb testing.TB, pkg string, input, params []byte, opts driver.Options) driver.Output {
	tb.Helper()
	r := Runner(tb)
	sha, err := r.Compile(context.Background(), Module(tb, pkg))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := driver.Run(context.Background(), r.Executor(pkg, sha, params), input, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Diff describes how two outputs differ, or returns "" if they are equal,
// counters included.
func Diff(got, want driver.Output) string {
	if len(got.Pairs) != len(want.Pairs) {
		return fmt.Sprintf("%d pairs, want %d%s", len(got.Pairs), len(want.Pairs), firstDiff(got.Pairs, want.Pairs))
	}
	if d := firstDiff(got.Pairs, want.Pairs); d != "" {
		return d
	}
	if !reflect.DeepEqual(got.Counters, want.Counters) && (len(got.Counters) > 0 || len(want.Counters) > 0) {
		return fmt.Sprintf("counters %v, want %v", got.Counters, want.Counters)
	}
	return ""
}

func firstDiff(got, want []abi.Pair) string {
	for i := range min(len(got), len(want)) {
		if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Value, want[i].Value) {
			return fmt.Sprintf("; pair %d is %q=%q, want %q=%q", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
	return ""
}

// Pairs builds an Output's pairs from a map of string keys and values, sorted
// as the driver sorts them: a convenient shape for a test's oracle.
func Pairs(m map[string]string) []abi.Pair {
	out := make([]abi.Pair, 0, len(m))
	for k, v := range m {
		out = append(out, abi.Pair{Key: []byte(k), Value: []byte(v)})
	}
	slicesSort(out)
	return out
}

func slicesSort(p []abi.Pair) { slices.SortFunc(p, abi.Pair.Compare) }
