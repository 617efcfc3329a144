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

// Command returns the wasm bytes of the Go package main pkg built as a
// plain WASI command (no -buildmode=c-shared): a command module.
func Command(tb testing.TB, pkg string) []byte {
	tb.Helper()
	return cached(tb, "command:"+pkg, func() ([]byte, error) { return goBuild(pkg, false) })
}

// C returns the wasm bytes of the C program file (a path relative to the
// test's directory) compiled with clang --target=wasm32-wasi -O2: a
// command module. Without clang and wasi-libc the test is skipped, except
// in CI (CI set), where `make test` installs them and their absence fails.
func C(tb testing.TB, file string) []byte {
	tb.Helper()
	if _, err := exec.LookPath("clang"); err != nil {
		missingToolchain(tb, "clang (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32, or make wasm-toolchains)")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		tb.Fatal(err)
	}
	return cached(tb, "c:"+abs, func() ([]byte, error) {
		return buildTo(func(out string) error {
			if msg, err := exec.Command("clang", "--target=wasm32-wasi", "-O2", "-o", out, abs).CombinedOutput(); err != nil {
				return fmt.Errorf("clang %s: %w\n%s", file, err, msg)
			}
			return nil
		})
	})
}

// AssemblyScript returns the wasm bytes of the AssemblyScript job in dir
// (a path relative to the test's directory, holding package.json,
// asconfig.json and assembly/index.ts), compiled by the asc of its
// node_modules with its asconfig.json's release target. Without npm, or
// with the job's packages not installed (`npm ci` in dir; `make jobs`
// runs it), the test is skipped, except in CI.
func AssemblyScript(tb testing.TB, dir string) []byte {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	asc := filepath.Join(abs, "node_modules", ".bin", "asc")
	if _, err := os.Stat(asc); err != nil {
		missingToolchain(tb, "AssemblyScript (node ≥ 20 and npm, then `npm ci` in "+dir+", or make jobs)")
	}
	return cached(tb, "as:"+abs, func() ([]byte, error) {
		return buildTo(func(out string) error {
			cmd := exec.Command(asc, "assembly/index.ts", "--config", "asconfig.json", "--target", "release", "--outFile", out)
			cmd.Dir = abs
			if msg, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("asc %s: %w\n%s", dir, err, msg)
			}
			return nil
		})
	})
}

// missingToolchain skips the test for want of a toolchain, or fails it in
// CI, where the Makefile installs every toolchain the tests use.
func missingToolchain(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is not installed, and CI is set: `make test` installs it", what)
	}
	tb.Skipf("%s is not installed: skipping", what)
}

// entry returns the build of the module named key, made once per test
// binary.
func entry(key string) *build {
	mu.Lock()
	defer mu.Unlock()
	b, ok := built[key]
	if !ok {
		b = &build{}
		built[key] = b
	}
	return b
}

// cached builds the module named key once per test binary.
func cached(tb testing.TB, key string, make func() ([]byte, error)) []byte {
	tb.Helper()
	b := entry(key)
	b.once.Do(func() { b.wasm, b.err = make() })
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.wasm
}

// Modules builds several packages in parallel and returns their bytes in
// order.
func Modules(tb testing.TB, pkgs ...string) [][]byte {
	tb.Helper()
	bs := make([]*build, len(pkgs))
	var wg sync.WaitGroup
	for i, pkg := range pkgs {
		b := entry(pkg)
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
func Build(pkg string) ([]byte, error) { return goBuild(pkg, true) }

func goBuild(pkg string, reactor bool) ([]byte, error) {
	return buildTo(func(out string) error {
		args := []string{"build", "-ldflags=-s -w", "-o", out, pkg}
		if reactor {
			args = append(args[:1], append([]string{"-buildmode=c-shared"}, args[1:]...)...)
		}
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s for wasip1: %w\n%s", pkg, err, msg)
		}
		return nil
	})
}

// buildTo runs build with the path of a module file in a temporary
// directory and returns what it wrote there.
func buildTo(build func(out string) error) ([]byte, error) {
	dir, err := os.MkdirTemp("", "wasmtest-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "module.wasm")
	if err := build(out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// CacheDir is a wazero compilation cache directory shared by all test
// binaries, so a module is compiled to machine code once per machine rather
// than once per test.
func CacheDir() string {
	return filepath.Join(os.TempDir(), "tabreduce-wazero-cache")
}
