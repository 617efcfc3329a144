package main

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/worker"
)

func init() {
	register("worker", "[flags]", "run tasks for a server as a native worker", runWorker)
}

// maxWorkerSlots bounds --slots (the protocol carries slots in 16 bits).
const maxWorkerSlots = 1024

// runWorker is `tabreduce worker`: a native worker that connects to a
// server's /api/v1/ws/worker, runs its tasks on the wasm runner and reconnects when
// the connection drops, until interrupted. --faulty exists only to test the
// server's verification of results: it makes the worker cheat.
func runWorker(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("worker", env)
	cf := addClientFlags(fs, env)
	slots := fs.Int("slots", runtime.GOMAXPROCS(0), "tasks run at once")
	name := fs.String("name", "", "label shown in the server's worker list")
	cache := fs.String("cache", compileCacheDir(env), "wazero compilation cache `directory` ($TABREDUCE_CACHE, else the user cache dir)")
	memMiB := fs.Uint("memory-mb", runner.DefaultMemoryLimitPages/16, "linear memory cap per instance, MiB")
	faulty := fs.Float64("faulty", 0, "TESTING ONLY, to test the server's verification: the fraction (0 to 1) of results\n"+
		"this worker corrupts on purpose (a changed count or a dropped pair, well framed)")
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := cf.resolve(); err != nil {
		return err
	}
	if err := inRange("--slots", int64(*slots), 1, maxWorkerSlots, nil); err != nil {
		return err
	}
	if err := inRange("--memory-mb", int64(*memMiB), 1, 4096, nil); err != nil {
		return err
	}
	if !(*faulty >= 0 && *faulty <= 1) {
		return usagef("--faulty %g is outside 0..1", *faulty)
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
	if cf.token != "" {
		header.Set("Authorization", "Bearer "+cf.token)
	}
	log.Info("worker starting", "server", cf.server, "slots", *slots, "name", *name, "cache", *cache)
	if _, err := cf.client().Health(ctx); err != nil && ctx.Err() == nil {
		log.Warn("server not reachable yet; the worker keeps trying to connect", "err", oneLine(explain(err).Error()))
	}
	if *faulty > 0 {
		log.Warn("worker is faulty on purpose (--faulty, for testing verification): it corrupts a share of its results", "faulty", *faulty)
	}
	return worker.Run(ctx, worker.Options{
		Server: cf.server,
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
