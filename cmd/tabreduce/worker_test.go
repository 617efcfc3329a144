package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

func TestWorkerCommandFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"no slots", []string{"worker", "--slots", "0"}, "--slots 0 is outside 1..1024"},
		{"bad server", []string{"worker", "--server", "ftp://x"}, `--server: "ftp://x": want an http:// or https:// address`},
		{"stray argument", []string{"worker", "extra"}, `unexpected argument "extra"`},
		{"faulty above 1", []string{"worker", "--faulty", "1.5"}, "--faulty 1.5 is outside 0..1"},
		{"faulty negative", []string{"worker", "--faulty", "-0.1"}, "--faulty -0.1 is outside 0..1"},
		{"faulty NaN", []string{"worker", "--faulty", "NaN"}, "--faulty NaN is outside 0..1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.stderrHas) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.stderrHas)
			}
		})
	}
}

// TestWorkerCommandRetries: a worker whose server is not there says so,
// with how to start one, keeps retrying and exits cleanly when interrupted.
func TestWorkerCommandRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		switch k {
		case "TABREDUCE_SERVER":
			return "http://127.0.0.1:1"
		case "TABREDUCE_CACHE":
			return wasmtest.CacheDir()
		}
		return ""
	}}
	if code := Main(ctx, []string{"worker", "--slots", "1", "--name", "t"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s := errb.String(); !strings.Contains(s, "127.0.0.1:1") || !strings.Contains(s, "worker session ended") {
		t.Fatalf("stderr %q", s)
	}
	lines := strings.Split(errb.String(), "\n")
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.Contains(l, "server not reachable yet") && strings.Contains(l, "cannot reach the server at http://127.0.0.1:1 (") &&
			strings.Contains(l, "tabreduce serve")
	}) {
		t.Errorf("no hint that the server is not running; stderr:\n%s", errb.String())
	}
}
