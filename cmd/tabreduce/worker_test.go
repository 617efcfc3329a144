package main

import (
	"bytes"
	"context"
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
		{"no slots", []string{"worker", "--slots", "0"}, "--slots must be at least 1"},
		{"bad server", []string{"worker", "--server", "ftp://x"}, "scheme must be http"},
		{"stray argument", []string{"worker", "extra"}, `unexpected argument "extra"`},
		{"faulty above 1", []string{"worker", "--faulty", "1.5"}, "--faulty must be between 0 and 1"},
		{"faulty negative", []string{"worker", "--faulty", "-0.1"}, "--faulty must be between 0 and 1"},
		{"faulty NaN", []string{"worker", "--faulty", "NaN"}, "--faulty must be between 0 and 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.stderrHas) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.stderrHas)
			}
		})
	}
}

// TestWorkerCommandRetries: a worker whose server is not there keeps
// retrying and exits cleanly when interrupted.
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
}
