// Package wasmtest builds Go job packages into wasip1 reactor modules for
// tests, so that tests never depend on `make jobs` having run. Each package
// is built once per test binary; go's build cache makes later test runs cheap.
package wasmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string]*build{}
)

type build struct {
	once sync.Once
	wasm []byte
	err  error
}

// Module returns the wasm bytes of the Go package pkg (an import path or a
// directory relative to the test's working directory), built with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared. It fails the test if the
// build fails.
func Module(tb testing.TB, pkg string) []byte {
	tb.Helper()
	return Modules(tb, pkg)[0]
}

// Modules builds several packages in parallel and returns their bytes in
// order.
func Modules(tb testing.TB, pkgs ...string) [][]byte {
	tb.Helper()
	bs := make([]*build, len(pkgs))
	var wg sync.WaitGroup
	for i, pkg := range pkgs {
		mu.Lock()
		b, ok := built[pkg]
		if !ok {
			b = &build{}
			built[pkg] = b
		}
		mu.Unlock()
		bs[i] = b
		wg.Go(func() { b.once.Do(func() { b.wasm, b.err = Build(pkg) }) })
	}
	wg.Wait()
	out := make([][]byte, len(pkgs))
	for i, b := range bs {
		if b.err != nil {
			tb.Fatal(b.err)
		}
		out[i] = b.wasm
	}
	return out
}

// Build compiles pkg to a wasip1 reactor and returns the module bytes.
func Build(pkg string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "wasmtest-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "module.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s for wasip1: %w\n%s", pkg, err, msg)
	}
	return os.ReadFile(out)
}

// CacheDir is a wazero compilation cache directory shared by all test
// binaries, so a module is compiled to machine code once per machine rather
// than once per test.
func CacheDir() string {
	return filepath.Join(os.TempDir(), "tabreduce-wazero-cache")
}
