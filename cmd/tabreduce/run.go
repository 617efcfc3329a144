package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

func init() {
	c := register("run", "--job JOB --input FILE [flags]", "run a job locally on the wasm runner and print key<TAB>value lines", runJob)
	c.more = func() string {
		return "Built-in jobs run as trusted code, as on the server's workers. Any other module runs\n" +
			"sandboxed with termination checks (a task past --timeout is stopped wherever it is),\n" +
			"which costs Go modules about 6x; --trusted runs your own module at full speed.\n"
	}
}

// runJob is `tabreduce run`: a whole job (map, shuffle, reduce) in-process
// on the native runner, output sorted by key on stdout, counters on stderr.
func runJob(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("run", env)
	job := fs.String("job", "", "built-in job name or path to a .wasm module (required)")
	input := fs.String("input", "", "input file (required)")
	params := fs.String("params", "", "job parameters, usually JSON")
	reducers := fs.Int("reducers", 1, "number of reduce partitions")
	chunk := byteSizeFlag(driver.DefaultChunkSize)
	fs.Var(&chunk, "chunk-size", "map input per task, cut at newlines: a `size` such as 4MiB or 512KiB")
	timeout := fs.Duration("timeout", runner.DefaultCallTimeout, "deadline of one task call")
	memMiB := fs.Uint("memory-mb", runner.DefaultMemoryLimitPages/16, "linear memory cap per instance, MiB")
	trusted := fs.Bool("trusted", false, "run a module that is not built in without termination checks: full speed,\n"+
		"but a task that never returns cannot be stopped")
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *job == "" || *input == "" {
		return usagef("--job and --input are required")
	}
	if err := inRange("--reducers", int64(*reducers), 1, engine.MaxReducers, nil); err != nil {
		return err
	}
	if err := inRange("--chunk-size", int64(chunk), engine.MinChunkSize, engine.MaxChunkSize, formatByteSize); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usagef("--timeout %v must be positive", *timeout)
	}
	if err := inRange("--memory-mb", int64(*memMiB), 1, 4096, nil); err != nil {
		return err
	}
	wasm, err := jobs.Load(*job)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*input)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	r, err := runner.New(ctx, runner.Config{
		CacheDir:         compileCacheDir(env),
		CallTimeout:      *timeout,
		MemoryLimitPages: uint32(*memMiB * 16),
	})
	if err != nil {
		return err
	}
	defer r.Close(context.Background())
	start := time.Now()
	sha, how, err := compileForRun(ctx, r, wasm, *trusted)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "module %.12s (%s): %s\n", sha, *job, how)
	out, err := driver.Run(ctx, r.Executor(filepath.Base(*job), sha, []byte(*params)), data, driver.Options{
		ChunkSize:   int(chunk),
		Reducers:    *reducers,
		Parallelism: runtime.GOMAXPROCS(0),
	})
	if err != nil {
		return err
	}
	if err := out.WriteTSV(env.stdout); err != nil {
		return err
	}
	for _, c := range out.Counters {
		fmt.Fprintf(env.stderr, "counter %s %d\n", c.Name, c.Value)
	}
	fmt.Fprintf(env.stderr, "module %.12s: %d bytes in, %d pairs out, %v\n", sha, len(data), len(out.Pairs), time.Since(start).Round(time.Millisecond))
	return nil
}

// compileForRun compiles a module for `tabreduce run`: built-in jobs, and
// modules the caller vouches for, as trusted code, as the server's workers
// run built-ins; anything else with termination checks. It says which.
func compileForRun(ctx context.Context, r *runner.Runner, wasm []byte, trusted bool) (sha, how string, err error) {
	sum := sha256.Sum256(wasm)
	switch {
	case jobs.SHAs()[hex.EncodeToString(sum[:])]:
		sha, err = r.CompileTrusted(ctx, wasm)
		how = "a built-in job, run as trusted code (no termination checks, as on the server's workers)"
	case trusted:
		sha, err = r.CompileTrusted(ctx, wasm)
		how = "trusted (--trusted): no termination checks, full speed"
	default:
		sha, err = r.Compile(ctx, wasm)
		how = "sandboxed with termination checks (about 6x slower for Go modules; --trusted runs your own at full speed)"
	}
	return sha, how, err
}

// compileCacheDir is where wazero keeps compiled modules between runs:
// $TABREDUCE_CACHE, else the user cache dir, else none.
func compileCacheDir(env *cliEnv) string {
	if env.getenv != nil {
		if d := env.getenv("TABREDUCE_CACHE"); d != "" {
			return d
		}
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "tabreduce", "wazero")
}
