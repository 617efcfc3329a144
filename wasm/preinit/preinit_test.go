package preinit_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/preinit"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tetratelabs/wazero"
)

const wordcount = "github.com/tabreduce/tabreduce/jobs/wordcount"

// A started Go module runs a job as the module it came from does: the same
// pairs and counters over many tasks (with garbage collections between
// them), and no _initialize left to call.
func TestSnapshotRunsAsTheModule(t *testing.T) {
	ctx := context.Background()
	orig := wasmtest.Module(t, wordcount)
	started, err := preinit.Snapshot(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	if !exports(t, orig, "_initialize") || exports(t, started, "_initialize") {
		t.Fatalf("_initialize exported: %v before, %v after", exports(t, orig, "_initialize"), exports(t, started, "_initialize"))
	}
	r, err := runner.New(ctx, runner.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	input := wasmtest.ZipfText(2 << 20)
	opts := driver.Options{ChunkSize: 64 << 10, Reducers: 3}
	var outs []driver.Output
	for _, wasm := range [][]byte{orig, started} {
		sha, err := r.Compile(ctx, wasm) // sandboxed: the runner checks the module as at upload
		if err != nil {
			t.Fatal(err)
		}
		out, err := driver.Run(ctx, r.Executor("wordcount", sha, nil), input, opts)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	if len(outs[0].Pairs) == 0 {
		t.Fatal("no output")
	}
	if d := wasmtest.Diff(outs[1], outs[0]); d != "" {
		t.Fatalf("the started module's output differs: %s", d)
	}
	// Snapshotting is a function of the bytes: the same module twice.
	again, err := preinit.Snapshot(ctx, orig)
	if err != nil || !bytes.Equal(again, started) {
		t.Fatalf("a second snapshot differs (err %v)", err)
	}
}

// A module with nothing to start (a command, or a reactor already
// started) comes back as it is.
func TestSnapshotLeavesModulesWithoutInitialize(t *testing.T) {
	for name, wasm := range map[string][]byte{
		"command": wasmtest.Command(t, "github.com/tabreduce/tabreduce/jobs/wordcount-cmd"),
		"started": mustSnapshot(t, wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/noop")),
	} {
		got, err := preinit.Snapshot(context.Background(), wasm)
		if err != nil || !bytes.Equal(got, wasm) {
			t.Errorf("%s: changed (err %v)", name, err)
		}
	}
}

// What is not a module is refused, not mended.
func TestSnapshotRefuses(t *testing.T) {
	noop := wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/noop")
	for name, wasm := range map[string][]byte{
		"empty":     nil,
		"not wasm":  []byte("#!/bin/sh\necho hello\n"),
		"truncated": noop[:len(noop)/2],
	} {
		if _, err := preinit.Snapshot(context.Background(), wasm); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func mustSnapshot(t *testing.T, wasm []byte) []byte {
	t.Helper()
	out, err := preinit.Snapshot(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exports reports whether wasm exports a function called name.
func exports(t *testing.T, wasm []byte, name string) bool {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	m, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	_, ok := m.ExportedFunctions()[name]
	return ok
}
