package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/servertest"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// testEnv is an environment with the variables vars and buffers for
// stdout and stderr.
func testEnv(vars map[string]string) *cliEnv {
	return &cliEnv{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{},
		getenv: func(k string) string { return vars[k] }}
}

func TestParseSubmit(t *testing.T) {
	defaults := engine.Spec{ChunkSize: engine.DefaultChunkSize, Reducers: engine.DefaultReducers,
		MaxAttempts: engine.DefaultMaxAttempts, TaskTimeout: engine.DefaultTaskTimeout.Seconds()}
	with := func(f func(*engine.Spec)) engine.Spec { s := defaults; f(&s); return s }
	tests := []struct {
		name          string
		args          []string
		vars          map[string]string
		spec          engine.Spec
		inputs        []string
		server, token string
		wait          bool
		err           string
	}{
		{name: "defaults", args: []string{"--job", "wordcount", "--input", "a.txt"},
			spec: defaults, inputs: []string{"a.txt"}, server: defaultServer},
		{name: "every flag", args: []string{"--job", "x.wasm", "--input", "a", "--input", "b", "--reducers", "8",
			"--params", `{"pattern":"x"}`, "--chunk-size", "512KiB", "--max-attempts", "2", "--task-timeout", "90s",
			"--wait", "--server", "http://h:1", "--token", "t", "--verify", "replicate"},
			spec: with(func(s *engine.Spec) {
				s.Reducers, s.ChunkSize, s.MaxAttempts, s.TaskTimeout = 8, 512<<10, 2, 90
				s.Verify = engine.VerifyReplicate
				s.Params = json.RawMessage(`{"pattern":"x"}`)
			}),
			inputs: []string{"a", "b"}, server: "http://h:1", token: "t", wait: true},
		{name: "a streaming queue", args: []string{"--job", "grep", "--input-queue", "lines", "--stream"},
			spec: with(func(s *engine.Spec) { s.InputQueue, s.Stream = "lines", true }), server: defaultServer},
		{name: "server and token from the environment", args: []string{"--job", "wordcount", "--input", "a"},
			vars: map[string]string{"TABREDUCE_SERVER": "http://env:1", "TABREDUCE_TOKEN": "tok"},
			spec: defaults, inputs: []string{"a"}, server: "http://env:1", token: "tok"},
		{name: "no job", args: []string{"--input", "a"}, err: "--job (or --mapper and --reducer) and --input (or --input-queue) are required"},
		{name: "mapper without reducer", args: []string{"--mapper", "wc.wasm", "--input", "a"}, err: "--job (or --mapper and --reducer)"},
		{name: "server without a scheme", args: []string{"--job", "wordcount", "--input", "a", "--server", "127.0.0.1:9"},
			spec: defaults, inputs: []string{"a"}, server: "http://127.0.0.1:9"},
		{name: "server with a path", args: []string{"--job", "wordcount", "--input", "a", "--server", "https://h/tr/"},
			spec: defaults, inputs: []string{"a"}, server: "https://h/tr"},
		{name: "bad server", args: []string{"--job", "wordcount", "--input", "a", "--server", "ftp://h:1"}, err: "--server: \"ftp://h:1\": want an http:// or https:// address"},
		{name: "zero reducers", args: []string{"--job", "wordcount", "--input", "a", "--reducers", "0"}, err: "--reducers 0 is outside 1..1024"},
		{name: "too many reducers", args: []string{"--job", "wordcount", "--input", "a", "--reducers", "1025"}, err: "--reducers 1025 is outside 1..1024"},
		{name: "large chunks", args: []string{"--job", "wordcount", "--input", "a", "--chunk-size", "100MiB"}, err: "--chunk-size 100MiB is outside 1B..64MiB"},
		{name: "zero attempts", args: []string{"--job", "wordcount", "--input", "a", "--max-attempts", "0"}, err: "--max-attempts 0 is outside 1..100"},
		{name: "short timeout", args: []string{"--job", "wordcount", "--input", "a", "--task-timeout", "10ms"}, err: "--task-timeout 10ms is outside 1s..1h0m0s"},
		{name: "no input", args: []string{"--job", "wordcount"}, err: "and --input (or --input-queue) are required"},
		{name: "params not JSON", args: []string{"--job", "grep", "--input", "a", "--params", "{x"}, err: "--params must be JSON"},
		{name: "bad chunk size", args: []string{"--job", "grep", "--input", "a", "--chunk-size", "lots"}, err: "size \"lots\""},
		{name: "bad verify", args: []string{"--job", "grep", "--input", "a", "--verify", "trust"}, err: `--verify: verify "trust" must be none, replicate, adaptive or spotcheck`},
		{name: "an argument", args: []string{"--job", "grep", "--input", "a", "extra"}, err: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseSubmit(tt.args, testEnv(tt.vars))
			if tt.err != "" {
				var ue *usageError
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.As(err, &ue) {
					t.Fatalf("want the usage error %q, got %#v", tt.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.spec, tt.spec) || !reflect.DeepEqual([]string(o.inputs), tt.inputs) ||
				o.client.server != tt.server || o.client.token != tt.token || o.wait != tt.wait {
				t.Fatalf("got spec %+v, inputs %q, server %q, token %q, wait %v", o.spec, o.inputs, o.client.server, o.client.token, o.wait)
			}
		})
	}
}

// lastLine is the last line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestClientCommands runs submit, jobs, job, output and cancel against a
// real server with a real worker.
func TestClientCommands(t *testing.T) {
	srv := servertest.Start(t, server.Config{Token: "sesame"})
	servertest.StartWorker(t, srv.URL(), "sesame")
	conn := []string{"--server", srv.URL(), "--token", "sesame"}
	dir := t.TempDir()
	input := filepath.Join(dir, "in.txt")
	module := filepath.Join(dir, "wc.wasm")
	if err := os.WriteFile(input, []byte("b a\nc, A b\tB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(module, wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/wordcount"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(args, conn...)...)
	}

	code, stdout, stderr := cli("submit", "--job", "wordcount", "--input", input, "--reducers", "3", "--wait")
	id := lastLine(stdout)
	hint := `output: tabreduce output ` + id + ` --server ` + srv.URL() + ` --token "$TABREDUCE_TOKEN" > out.tsv`
	if code != 0 || id == "" || strings.Contains(id, " ") || !strings.Contains(stderr, hint+"\n") {
		t.Fatalf("submit --wait: code %d, stdout %q, stderr %q; want the line %q", code, stdout, stderr, hint)
	}
	// The hint works as printed, in a shell where the token is in the
	// environment.
	words := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(hint, "output: tabreduce "), " > out.tsv"))
	for i, w := range words {
		words[i] = strings.ReplaceAll(w, `"$TABREDUCE_TOKEN"`, "sesame")
	}
	if code, stdout, stderr = runCLI(t, words...); code != 0 || stdout != "a\t2\nb\t3\nc\t1\n" {
		t.Errorf("output: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, runOut, _ := runCLI(t, "run", "--job", module, "--input", input); runOut != stdout {
		t.Errorf("output %q differs from run's %q", stdout, runOut)
	}
	if code, stdout, _ = cli("jobs"); code != 0 || !strings.Contains(stdout, id+"  done") || !strings.HasPrefix(stdout, "ID ") {
		t.Errorf("jobs: code %d, stdout %q", code, stdout)
	}
	if code, stdout, _ = cli("job", id); code != 0 || !strings.Contains(stdout, "state      done") || !strings.Contains(stdout, "tabreduce output "+id) {
		t.Errorf("job: code %d, stdout %q", code, stdout)
	}
	if code, _, stderr = cli("cancel", id); code != 1 || !strings.HasPrefix(stderr, "tabreduce cancel: job "+id+" has already finished (done); tabreduce rm "+id+" deletes it") {
		t.Errorf("cancel a done job: code %d, stderr %q", code, stderr)
	}
	if code, stdout, stderr = cli("rm", id); code != 0 || stdout != "job "+id+" deleted\n" {
		t.Errorf("rm a done job: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr = cli("job", id); code != 1 || !strings.HasPrefix(stderr, "tabreduce job: 404 Not Found: job not found") {
		t.Errorf("job after rm: code %d, stderr %q", code, stderr)
	}
	if code, _, stderr = cli("job", "nosuchjob"); code != 1 || !strings.HasPrefix(stderr, "tabreduce job: 404 Not Found: job not found") {
		t.Errorf("job nosuchjob: code %d, stderr %q", code, stderr)
	}

	// A module from a file, without --wait: stdout is the id alone.
	code, stdout, stderr = cli("submit", "--job", module, "--input", input)
	if code != 0 || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("submit: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A job that fails: grep needs its pattern.
	code, stdout, stderr = cli("submit", "--job", "grep", "--input", input, "--max-attempts", "1", "--wait")
	id = lastLine(stdout)
	if code != 1 || !strings.HasPrefix(stderr[strings.LastIndex(stderr[:len(stderr)-1], "\n")+1:], "tabreduce submit: job "+id+" failed: ") {
		t.Errorf("failing job: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
