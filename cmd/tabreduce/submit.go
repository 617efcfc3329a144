package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

func init() {
	c := register("submit", "--job JOB --input FILE... [flags]", "submit a job to a server; --wait follows it to the end", submitJob)
	c.more = submitHelp
}

// submitHelp lists the built-in jobs and the bounds of the settings.
func submitHelp() string {
	var b strings.Builder
	b.WriteString("built-in jobs (--job NAME; or --job path/to/module.wasm):\n")
	sums := jobs.Summaries()
	for _, name := range jobs.Names() {
		fmt.Fprintf(&b, "  %-14s %s\n", name, sums[name])
	}
	fmt.Fprintf(&b, "\nbounds: --chunk-size %s..%s, --reducers 1..%d, --max-attempts 1..%d, --task-timeout 1s..%s\n",
		formatByteSize(engine.MinChunkSize), formatByteSize(engine.MaxChunkSize), engine.MaxReducers, engine.MaxAttempts,
		time.Duration(engine.MaxTaskTimeout)*time.Second)
	return b.String()
}

// submitOptions are submit's parsed flags.
type submitOptions struct {
	client *clientFlags
	job    string // built-in name or path to a .wasm module
	// mapper and reducer, like job, run the two phases with different
	// modules (Hadoop Streaming's -mapper and -reducer).
	mapper, reducer string
	inputs          []string // input file paths
	spec            engine.Spec
	wait            bool
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func parseSubmit(args []string, env *cliEnv) (submitOptions, error) {
	fs := newFlagSet("submit", env)
	o := submitOptions{client: addClientFlags(fs, env)}
	var inputs stringsFlag
	var params string
	chunk := byteSizeFlag(engine.DefaultChunkSize)
	fs.StringVar(&o.job, "job", "", "built-in job name or path to a .wasm module (required, unless --mapper and --reducer)")
	fs.StringVar(&o.mapper, "mapper", "", "the map phase's module, if not --job's: a built-in or a .wasm file,\n"+
		"a reactor or a WASI command (stdin → key<TAB>value lines; args and env from --params {\"args\": [...], \"env\": [...]})")
	fs.StringVar(&o.reducer, "reducer", "", "the reduce phase's module, if not --job's: e.g. the built-in sum, or a command .wasm")
	fs.Var(&inputs, "input", "input `file`; repeat for more")
	fs.IntVar(&o.spec.Reducers, "reducers", engine.DefaultReducers, "number of reduce partitions")
	fs.StringVar(&params, "params", "", "job parameters, as JSON")
	fs.Var(&chunk, "chunk-size", "map input per task, cut at newlines: a `size` such as 1MiB or 512KiB")
	fs.IntVar(&o.spec.MaxAttempts, "max-attempts", engine.DefaultMaxAttempts, "failures a task may have before the job fails")
	taskTimeout := fs.Duration("task-timeout", engine.DefaultTaskTimeout, "longest a task may run on a worker")
	fs.StringVar(&o.spec.InputQueue, "input-queue", "", "a queue whose messages are the input, instead of files")
	fs.StringVar(&o.spec.OutputQueue, "output-queue", "", "a queue that receives every final record as a message {\"key\":...,\"value\":...}")
	fs.BoolVar(&o.spec.Stream, "stream", false, "streaming job: map --input-queue's messages into --output-queue as they arrive, until cancelled")
	verify := fs.String("verify", "", "how results of untrusted workers are checked: none, replicate, adaptive or spotcheck\n"+
		"(default: the server's, adaptive)")
	fs.BoolVar(&o.wait, "wait", false, "follow the job until it ends; exit 0 only if it is done")
	if err := parseFlags(fs, args, env); err != nil {
		return o, err
	}
	if err := noArgs(fs); err != nil {
		return o, err
	}
	if o.job == "" && (o.mapper == "" || o.reducer == "") || len(inputs) == 0 && o.spec.InputQueue == "" {
		return o, usagef("--job (or --mapper and --reducer) and --input (or --input-queue) are required")
	}
	if err := o.client.resolve(); err != nil {
		return o, err
	}
	for _, c := range []struct {
		name      string
		v, lo, hi int64
		show      func(int64) string
	}{
		{"--reducers", int64(o.spec.Reducers), 1, engine.MaxReducers, nil},
		{"--chunk-size", int64(chunk), engine.MinChunkSize, engine.MaxChunkSize, formatByteSize},
		{"--max-attempts", int64(o.spec.MaxAttempts), 1, engine.MaxAttempts, nil},
		{"--task-timeout", int64(*taskTimeout), int64(time.Second), engine.MaxTaskTimeout * int64(time.Second),
			func(n int64) string { return time.Duration(n).String() }},
	} {
		if err := inRange(c.name, c.v, c.lo, c.hi, c.show); err != nil {
			return o, err
		}
	}
	if params != "" {
		if !json.Valid([]byte(params)) {
			return o, usagef("--params must be JSON, got %q", params)
		}
		o.spec.Params = json.RawMessage(params)
	}
	if *verify != "" {
		v, err := engine.ParseVerify(*verify)
		if err != nil {
			return o, usagef("--verify: %v", err)
		}
		o.spec.Verify = v
	}
	o.inputs = inputs
	o.spec.ChunkSize = int64(chunk)
	o.spec.TaskTimeout = taskTimeout.Seconds()
	return o, nil
}

// submitJob is `tabreduce submit`. Its last line on stdout is the job's id
// alone, whatever happens once the job exists; the rest goes to stderr.
func submitJob(ctx context.Context, args []string, env *cliEnv) error {
	o, err := parseSubmit(args, env)
	if err != nil {
		return err
	}
	inputs := make([]apiclient.Input, len(o.inputs))
	for i, path := range o.inputs {
		if err := checkInputFile(path); err != nil {
			return err
		}
		inputs[i] = apiclient.FileInput(path)
	}
	c := o.client.client()
	for _, m := range []struct {
		ref string
		dst *string
	}{{o.job, &o.spec.Module}, {o.mapper, &o.spec.Mapper}, {o.reducer, &o.spec.Reducer}} {
		if m.ref == "" {
			continue
		}
		if *m.dst, err = moduleRef(ctx, c, m.ref); err != nil {
			return err
		}
	}
	job, err := c.SubmitJob(ctx, o.spec, inputs...)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "submitted job %s (%s of input)\n", job.ID, humanBytes(job.BytesIn))
	if !o.wait {
		fmt.Fprintf(env.stderr, "follow it: %s\n", o.client.command("job", job.ID))
		fmt.Fprintln(env.stdout, job.ID)
		return nil
	}
	id, pp := job.ID, newProgressPrinter(env.stderr)
	job, err = c.WaitJob(ctx, id, pp.pollEvery(), pp.show)
	pp.end()
	if err != nil {
		err = fmt.Errorf("waiting for job %s: %w (it goes on: %s)", id, explain(err), o.client.command("job", id))
	} else {
		err = jobOutcome(env, job, o.client)
	}
	fmt.Fprintln(env.stdout, id)
	return err
}

// jobOutcome reports how a finished job ended: an error unless it is done.
func jobOutcome(env *cliEnv, job apiclient.Job, cf *clientFlags) error {
	switch job.State {
	case engine.StateDone:
		fmt.Fprintf(env.stderr, "job %s done: %d records, %s\n", job.ID, job.Records, humanBytes(job.BytesOut))
		fmt.Fprintf(env.stderr, "output: %s > out.tsv\n", cf.command("output", job.ID))
		return nil
	case engine.StateFailed:
		return fmt.Errorf("job %s failed: %s", job.ID, oneLine(job.Error))
	default:
		return fmt.Errorf("job %s ended %s", job.ID, job.State)
	}
}

// checkInputFile refuses what cannot be read as an input before anything
// is sent.
func checkInputFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("input %s is a directory", path)
	}
	return nil
}

// moduleRef returns what a spec names as its module: a built-in's name as
// it is, or, for a path to a .wasm file, the sha256 of the module uploaded.
func moduleRef(ctx context.Context, c *apiclient.Client, job string) (string, error) {
	if !strings.HasSuffix(job, ".wasm") && !strings.ContainsRune(job, '/') && !strings.ContainsRune(job, os.PathSeparator) {
		return job, nil
	}
	f, err := os.Open(job)
	if err != nil {
		return "", fmt.Errorf("job module: %w", err)
	}
	defer f.Close()
	m, err := c.UploadModuleNamed(ctx, f, filepath.Base(job))
	if err != nil {
		return "", fmt.Errorf("uploading %s: %w", job, err)
	}
	return m.SHA256, nil
}
