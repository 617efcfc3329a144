package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

func init() {
	register("submit", "submit a job to a server; --wait follows it to the end", submitJob)
}

// submitOptions are submit's parsed flags.
type submitOptions struct {
	client *clientFlags
	job    string   // built-in name or path to a .wasm module
	inputs []string // input file paths
	spec   engine.Spec
	wait   bool
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
	fs.StringVar(&o.job, "job", "", "built-in job name or path to a .wasm module (required)")
	fs.Var(&inputs, "input", "input file; repeat for more")
	fs.IntVar(&o.spec.Reducers, "reducers", engine.DefaultReducers, "number of reduce partitions")
	fs.StringVar(&params, "params", "", "job parameters, as JSON")
	fs.Var(&chunk, "chunk-size", "map input per task, cut at newlines (e.g. 1MiB, 512KiB)")
	fs.IntVar(&o.spec.MaxAttempts, "max-attempts", engine.DefaultMaxAttempts, "failures a task may have before the job fails")
	taskTimeout := fs.Duration("task-timeout", engine.DefaultTaskTimeout, "longest a task may run on a worker")
	fs.StringVar(&o.spec.InputQueue, "input-queue", "", "a queue whose messages are the input, instead of files")
	fs.BoolVar(&o.spec.Stream, "stream", false, "streaming job: map --input-queue's messages as they arrive, until cancelled")
	verify := fs.String("verify", "", "how results of untrusted workers are checked: none, replicate, adaptive or spotcheck\n"+
		"(default: the server's, adaptive)")
	fs.BoolVar(&o.wait, "wait", false, "follow the job until it ends; exit 0 only if it is done")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.job == "" || len(inputs) == 0 && o.spec.InputQueue == "" {
		fs.Usage()
		return o, errors.New("--job and --input (or --input-queue) are required")
	}
	if params != "" {
		if !json.Valid([]byte(params)) {
			return o, fmt.Errorf("--params must be JSON, got %q", params)
		}
		o.spec.Params = json.RawMessage(params)
	}
	if *verify != "" {
		v, err := engine.ParseVerify(*verify)
		if err != nil {
			return o, fmt.Errorf("--verify: %w", err)
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
	if o.spec.Module, err = moduleRef(ctx, c, o.job); err != nil {
		return err
	}
	job, err := c.SubmitJob(ctx, o.spec, inputs...)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "submitted job %s (%s of input)\n", job.ID, humanBytes(job.BytesIn))
	if !o.wait {
		fmt.Fprintf(env.stderr, "follow it: tabreduce job %s\n", job.ID)
		fmt.Fprintln(env.stdout, job.ID)
		return nil
	}
	id, pp := job.ID, newProgressPrinter(env.stderr)
	job, err = c.WaitJob(ctx, id, pp.pollEvery(), pp.show)
	pp.end()
	if err != nil {
		err = fmt.Errorf("waiting for job %s: %w (it goes on: tabreduce job %s)", id, err, id)
	} else {
		err = jobOutcome(env, job)
	}
	fmt.Fprintln(env.stdout, id)
	return err
}

// jobOutcome reports how a finished job ended: an error unless it is done.
func jobOutcome(env *cliEnv, job apiclient.Job) error {
	switch job.State {
	case engine.StateDone:
		fmt.Fprintf(env.stderr, "job %s done: %d records, %s\n", job.ID, job.Records, humanBytes(job.BytesOut))
		fmt.Fprintf(env.stderr, "output: tabreduce output %s > out.tsv\n", job.ID)
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
	m, err := c.UploadModule(ctx, f)
	if err != nil {
		return "", fmt.Errorf("uploading %s: %w", job, err)
	}
	return m.SHA256, nil
}
