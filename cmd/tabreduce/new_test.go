package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// offline makes the go command unable to download anything: no proxy, a
// module cache of its own that starts empty, the local toolchain only. The
// build cache stays, since it is a cache of builds, not a source of code.
func offline(t *testing.T) {
	t.Helper()
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOTOOLCHAIN", "local")
	t.Setenv("GOWORK", "off")
}

// tabreduce new writes a project that builds, tests and runs with no
// network; tabreduce build writes DIR/<name>.wasm and prints its sha256 and
// size; the module gives what the job's test says.
func TestNewBuildRunOffline(t *testing.T) {
	offline(t)
	dir := filepath.Join(t.TempDir(), "wordfreq")
	code, stdout, stderr := runCLI(t, "new", dir)
	if code != 0 || !strings.HasPrefix(stdout, "wrote "+dir+": ") {
		t.Fatalf("new: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, f := range []string{"main.go", "main_test.go", "sdk/wasm/mr/job.go"} {
		src, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if formatted, err := format.Source(src); err != nil || string(formatted) != string(src) {
			t.Errorf("%s is not gofmt-formatted (%v)", f, err)
		}
	}

	code, stdout, stderr = runCLI(t, "build", dir)
	wasmPath := filepath.Join(dir, "wordfreq.wasm")
	m := regexp.MustCompile(`^(\S+)  sha256 ([0-9a-f]{64})  (\d+) bytes \([0-9.]+ MB\)\n$`).FindStringSubmatch(stdout)
	if code != 0 || m == nil || m[1] != wasmPath {
		t.Fatalf("build: code %d, stdout %q, stderr %q; want %s, its sha256 and size", code, stdout, stderr, wasmPath)
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	if size, _ := strconv.Atoi(m[3]); m[2] != hex.EncodeToString(sum[:]) || size != len(wasm) {
		t.Errorf("build printed sha256 %s, %s bytes; the file has %x, %d", m[2], m[3], sum, len(wasm))
	}
	if exportsFunc(t, wasm, "_initialize") || strings.Contains(stderr, "not started at build time") {
		t.Errorf("build left the Go runtime's start to the host (_initialize still exported); stderr %q", stderr)
	}

	test := exec.Command("go", "test", "./...")
	test.Dir = dir
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("go test in the project: %v\n%s", err, out)
	}

	input := filepath.Join(dir, "input.txt")
	if err := os.WriteFile(input, []byte("the cat\nThe dog saw the cat\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "run", "--job", wasmPath, "--input", input)
	if code != 0 || stdout != "cat\t2\ndog\t1\nsaw\t1\nthe\t3\n" || !strings.Contains(stderr, "counter lines 2") ||
		!strings.Contains(stderr, "): sandboxed with termination checks") {
		t.Fatalf("run: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, stdout, _ = runCLI(t, "run", "--trusted", "--job", wasmPath, "--input", input); code != 0 || stdout != "cat\t2\ndog\t1\nsaw\t1\nthe\t3\n" {
		t.Errorf("run --trusted: code %d, stdout %q", code, stdout)
	}
}

// new writes nothing over an existing project, and refuses names that are
// not module paths.
func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "new", dir)
	if code != 1 || !strings.Contains(stderr, "is not empty") {
		t.Errorf("new into a non-empty directory: code %d, stderr %q", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "mine" {
		t.Errorf("keep.txt is now %q", b)
	}
	code, _, stderr = runCLI(t, "new", "--module", "bad name", filepath.Join(dir, "x"))
	if code != 2 || !strings.Contains(stderr, `module path "bad name"`) {
		t.Errorf("new --module 'bad name': code %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Errorf("a refused new left %s behind (%v)", filepath.Join(dir, "x"), err)
	}
	code, _, stderr = runCLI(t, "build", filepath.Join(dir, "nothing"))
	if code != 1 || !strings.Contains(stderr, "tabreduce new DIR") {
		t.Errorf("build where there is no project: code %d, stderr %q", code, stderr)
	}
}

// exportsFunc reports whether the module exports a function of that name.
func exportsFunc(t *testing.T, wasm []byte, name string) bool {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("compile the built module: %v", err)
	}
	_, ok := cm.ExportedFunctions()[name]
	return ok
}
