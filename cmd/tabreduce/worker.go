package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/worker"
)

func init() {
	register("worker", "run tasks for a server as a native worker", runWorker)
}

// runWorker is `tabreduce worker`: a native worker that connects to a
// server's /api/v1/ws/worker, runs its tasks on the wasm runner and reconnects when
// the connection drops, until interrupted. --faulty exists only to test the
// server's verification of results: it makes the worker cheat.
func runWorker(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("worker", env)
	server := fs.String("server", envOr(env, "TABREDUCE_SERVER", "http://127.0.0.1:8080"), "server base URL (default $TABREDUCE_SERVER)")
	slots := fs.Int("slots", runtime.GOMAXPROCS(0), "tasks run at once")
	name := fs.String("name", "", "label shown in the server's worker list")
	cache := fs.String("cache", compileCacheDir(env), "wazero compilation cache directory (default $TABREDUCE_CACHE or the user cache dir)")
	token := fs.String("token", env.getenv("TABREDUCE_TOKEN"), "bearer token for the server (default $TABREDUCE_TOKEN)")
	memMiB := fs.Uint("memory-mb", runner.DefaultMemoryLimitPages/16, "linear memory cap per instance, MiB")
	faulty := fs.Float64("faulty", 0, "TESTING ONLY, to test the server's verification: the fraction (0 to 1) of results\n"+
		"this worker corrupts on purpose (a changed count or a dropped pair, well framed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *slots < 1 {
		return fmt.Errorf("--slots must be at least 1")
	}
	if !(*faulty >= 0 && *faulty <= 1) {
		return fmt.Errorf("--faulty must be between 0 and 1, got %g", *faulty)
	}
	log := slog.New(slog.NewTextHandler(env.stderr, nil))
	r, err := runner.New(ctx, runner.Config{
		CacheDir:         *cache,
		MemoryLimitPages: uint32(*memMiB * 16),
		MaxIdle:          *slots,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	defer r.Close(context.Background())
	header := http.Header{}
	if *token != "" {
		header.Set("Authorization", "Bearer "+*token)
	}
	log.Info("worker starting", "server", *server, "slots", *slots, "name", *name, "cache", *cache)
	if *faulty > 0 {
		log.Warn("worker is faulty on purpose (--faulty, for testing verification): it corrupts a share of its results", "faulty", *faulty)
	}
	return worker.Run(ctx, worker.Options{
		Server: *server,
		Header: header,
		Runner: r,
		Slots:  *slots,
		Name:   *name,
		Logger: log,
		Faulty: *faulty,
		// The built-in jobs shipped in this binary are our code: trusted.
		TrustedModules: jobs.SHAs(),
	})
}

// envOr returns the environment variable key, or def if it is unset.
func envOr(env *cliEnv, key, def string) string {
	if env.getenv != nil {
		if v := env.getenv(key); v != "" {
			return v
		}
	}
	return def
}
