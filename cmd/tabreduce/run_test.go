package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// runCLI runs `tabreduce args...` in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "TABREDUCE_CACHE" {
			return wasmtest.CacheDir()
		}
		return ""
	}}
	code = Main(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	module := filepath.Join(dir, "wc.wasm")
	if err := os.WriteFile(module, wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/wordcount"), 0o644); err != nil {
		t.Fatal(err)
	}
	grep := filepath.Join(dir, "grep.wasm")
	if err := os.WriteFile(grep, wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/grep"), 0o644); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(input, []byte("b a\nc, A b\tB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    string
		stderrHas string
	}{
		{"wordcount", []string{"run", "--job", module, "--input", input, "--reducers", "3"}, 0, "a\t2\nb\t3\nc\t1\n", "counter words 6"},
		{"grep with params", []string{"run", "--job", grep, "--input", input, "--params", `{"pattern":"c"}`}, 0, "0000000000000004\tc, A b\\tB\n", "counter matches 1"},
		{"grep without params", []string{"run", "--job", grep, "--input", input}, 1, "", "init: grep parameters"},
		{"unknown built-in", []string{"run", "--job", "nosuchjob", "--input", input}, 1, "", "no such built-in job"},
		{"a built-in by name", []string{"run", "--job", "wordcount", "--input", input}, 0, "a\t2\nb\t3\nc\t1\n", "(wordcount): a built-in job, run as trusted code"},
		{"missing flags", []string{"run", "--job", module}, 2, "", "tabreduce run: --job and --input are required (run 'tabreduce run --help')\n"},
		{"zero reducers", []string{"run", "--job", module, "--input", input, "--reducers", "0"}, 2, "", "--reducers 0 is outside 1..1024"},
		{"missing input", []string{"run", "--job", module, "--input", filepath.Join(dir, "nope")}, 1, "", "input:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code || stdout != tt.stdout || !strings.Contains(stderr, tt.stderrHas) {
				t.Fatalf("code %d, stdout %q, stderr %q; want %d, %q, stderr containing %q", code, stdout, stderr, tt.code, tt.stdout, tt.stderrHas)
			}
		})
	}
}
