package runner_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// A module whose start never returns fails its compile at the compile
// deadline, not at a task's (minutes).
func TestCompileDeadline(t *testing.T) {
	loop := wasmtest.Module(t, "./testdata/initloop")
	r := newRunner(t, runner.Config{CompileTimeout: 500 * time.Millisecond})
	start := time.Now()
	_, err := r.Compile(t.Context(), loop)
	if !errors.Is(err, runner.ErrTimeout) || !strings.Contains(err.Error(), "_initialize") {
		t.Fatalf("err = %v, want ErrTimeout naming _initialize", err)
	}
	// Far below a task's deadline (minutes), however loaded the machine.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the compile took %v", d)
	}
}

// At most MaxCompiles compiles are at work at once: one more waits for a
// place, and fails with ErrBusy when its caller cannot wait; once the place
// is free, compiling works again.
func TestCompileCap(t *testing.T) {
	loop := wasmtest.Module(t, "./testdata/initloop")
	good := wasmtest.Module(t, wordcount)
	r := newRunner(t, runner.Config{MaxCompiles: 1, CompileTimeout: 5 * time.Second})
	var wg sync.WaitGroup
	wg.Go(func() { // holds the only place until its deadline
		if _, err := r.Compile(context.Background(), loop); !errors.Is(err, runner.ErrTimeout) {
			t.Errorf("loop: %v, want ErrTimeout", err)
		}
	})
	defer wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for r.Compiling() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the loop's compile never took its place")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := r.Compile(ctx, good); !errors.Is(err, runner.ErrBusy) {
		t.Fatalf("compile beside the loop: %v, want ErrBusy", err)
	}
	wg.Wait()
	if _, err := r.Compile(t.Context(), good); err != nil {
		t.Fatalf("compile once the place is free: %v", err)
	}
}

// A module that grows its memory to the cap makes the host hold about the
// cap, not a multiple of it: its memory is one mapping that grows in place
// (memory.go), not a slice copied at every growth.
func TestHostMemoryOfAModuleAtItsCap(t *testing.T) {
	if _, err := os.Stat("/proc/self/clear_refs"); err != nil {
		t.Skip("needs Linux's /proc/self/clear_refs to reset the peak resident set")
	}
	const capPages = 1024 // 64 MiB
	bomb := wasmtest.Module(t, "./testdata/bomb")
	r := newRunner(t, runner.Config{MemoryLimitPages: capPages, MaxIdle: 1})
	sha, err := r.Compile(t.Context(), bomb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak resident set: %v", err)
	}
	before := procStatus(t, "VmRSS")
	for range 2 {
		_, err := r.Map(t.Context(), runner.Task{ID: "bomb", Module: sha}, abi.Chunk{Data: []byte("x\n")})
		if !errors.Is(err, runner.ErrOutOfMemory) {
			t.Fatalf("err = %v, want ErrOutOfMemory", err)
		}
	}
	peak := procStatus(t, "VmHWM")
	limit := int64(capPages) * 65536
	t.Logf("peak resident set %d MiB above the start, cap %d MiB", (peak-before)>>20, limit>>20)
	if peak-before > limit+limit/4 {
		t.Errorf("the host held %d MiB for a module capped at %d MiB", (peak-before)>>20, limit>>20)
	}
}

// procStatus reads a size in bytes from /proc/self/status.
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
