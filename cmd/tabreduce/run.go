package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

func init() {
	register("run", "run a job locally on the wasm runner and print key<TAB>value lines", runJob)
}

// runJob is `tabreduce run`: a whole job (map, shuffle, reduce) in-process
// on the native runner, output sorted by key on stdout, counters on stderr.
func runJob(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("run", env)
	job := fs.String("job", "", "built-in job name or path to a .wasm module (required)")
	input := fs.String("input", "", "input file (required)")
	params := fs.String("params", "", "job parameters, usually JSON")
	reducers := fs.Int("reducers", 1, "number of reduce partitions")
	chunk := fs.Int("chunk-size", driver.DefaultChunkSize, "map chunk size in bytes (chunks end on a newline)")
	timeout := fs.Duration("timeout", runner.DefaultCallTimeout, "deadline of one task call")
	memMiB := fs.Uint("memory-mb", runner.DefaultMemoryLimitPages/16, "linear memory cap per instance, MiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *job == "" || *input == "" {
		fs.Usage()
		return errors.New("--job and --input are required")
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
	sha, err := r.Compile(ctx, wasm)
	if err != nil {
		return err
	}
	out, err := driver.Run(ctx, r.Executor(filepath.Base(*job), sha, []byte(*params)), data, driver.Options{
		ChunkSize:   *chunk,
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
