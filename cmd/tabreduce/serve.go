package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/buntstore"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/httpapi"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

func init() {
	register("serve", "[flags]", "run the broker and coordinator", serve)
}

// Bounds of serve's flags.
const (
	maxServeAttempts = 1000
	maxLocalWorkers  = 1024
	maxAnonWorkers   = 1 << 20
	maxCompiles      = 256
	// maxCompileTimeout: a start longer than this is a module to refuse.
	maxCompileTimeout = 10 * time.Minute
)

func serve(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("serve", env)
	var cfg server.Config
	var publicRead, allowOrigin, allowHost, trustedProxy string
	maxBody := byteSizeFlag(8 << 20)
	maxInput := byteSizeFlag(httpapi.DefaultMaxInput)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address; anything but loopback needs --token or --insecure")
	fs.StringVar(&cfg.RedisAddr, "redis-addr", "", "also speak the Redis protocol on this address, e.g. 127.0.0.1:6380 (default off; same rules as --addr)")
	fs.StringVar(&cfg.DataDir, "data", "./data", "data directory: job inputs, modules and the embedded store")
	fs.StringVar(&cfg.StoreURL, "store", "", "the broker's store as a URL (default: the embedded buntdb file in --data; buntdb:///dir for another directory; redis://host:port/db, rediss://…, redis+cluster://host:port,host:port for Redis, shared by every server given it)")
	fs.StringVar(&cfg.Name, "name", "", "this server's name among the servers sharing a store (default: --addr)")
	fs.StringVar(&cfg.Fsync, "fsync", buntstore.FsyncEverySec, "when to fsync: always, everysec or never")
	fs.Var(&maxBody, "max-body", "largest request body: a `size` such as 8MiB, 512KiB or 1048576")
	fs.Var(&maxInput, "max-input", "largest job submission, input files included: a `size` such as 4GiB")
	fs.StringVar(&cfg.Token, "token", env.getenv("TABREDUCE_TOKEN"), "bearer token for writes and admin routes (default $TABREDUCE_TOKEN)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "allow a non-loopback --addr without a token")
	fs.BoolVar(&cfg.JSONP, "jsonp", false, "answer RestMQ's ?callback= JSONP (lets any web page read queues)")
	fs.StringVar(&publicRead, "public-read", "", "comma-separated queue/channel/key patterns readable without the token (\"*\": all reads)")
	fs.StringVar(&allowOrigin, "allow-origin", "", "comma-separated web origins (e.g. https://app.example.com, https://*.example.com, \"*\") whose pages may open WebSockets and live streams cross-origin")
	fs.StringVar(&allowHost, "allow-host", "", "comma-separated host names (patterns such as *.example.com) requests may name besides IP addresses and localhost; without --token no other is answered")
	fs.StringVar(&trustedProxy, "trusted-proxy", "", "comma-separated addresses or CIDR networks of reverse proxies whose X-Forwarded-For names the client")
	fs.IntVar(&cfg.MaxAnonWorkers, "max-anon-workers", httpapi.DefaultMaxAnonWorkers, "worker sockets open without the token, in all")
	fs.IntVar(&cfg.MaxAnonWorkersPerAddr, "max-anon-workers-per-addr", httpapi.DefaultMaxAnonWorkersPerAddr, "worker sockets open without the token from one address")
	fs.DurationVar(&cfg.CompileTimeout, "compile-timeout", runner.DefaultCompileTimeout, "how long an uploaded module's start (_initialize) may run when it is checked")
	fs.IntVar(&cfg.MaxCompiles, "max-compiles", 0, "modules compiled at once; more wait, then get a 503 (default: half the CPUs)")
	fs.IntVar(&cfg.MaxWorkerSlots, "max-worker-slots", engine.DefaultMaxWorkerSlots, "slots believed of a worker without the token, whatever it declares")
	fs.BoolVar(&cfg.SameNetworkReplicas, "same-network-replicas", false, "let replicas from distinct sessions on one /24 (or /48) network agree as if they came from distinct networks (a lab you control)")
	fs.IntVar(&cfg.MaxAttempts, "max-attempts", 5, "failed leases before a message moves to its dead-letter queue")
	fs.IntVar(&cfg.LocalWorkers, "local-workers", 0, "run an in-process worker with this many slots (0: none)")
	fs.DurationVar(&cfg.JobRetention, "job-retention", engine.DefaultJobRetention, "how long a finished job is kept before it is deleted (negative: until tabreduce rm)")
	pprofAddr := fs.String("pprof-addr", "", "serve Go's profiles (/debug/pprof/) on this loopback address (default off)")
	fs.StringVar(&cfg.WasmCache, "wasm-cache", "", "wazero compilation cache directory (default: the user cache dir)")
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if _, err := buntstore.ParseFsync(cfg.Fsync); err != nil {
		return usagef("--fsync: %v", err)
	}
	if err := inRange("--max-attempts", int64(cfg.MaxAttempts), 1, maxServeAttempts, nil); err != nil {
		return err
	}
	if err := inRange("--local-workers", int64(cfg.LocalWorkers), 0, maxLocalWorkers, nil); err != nil {
		return err
	}
	if err := inRange("--max-anon-workers", int64(cfg.MaxAnonWorkers), 1, maxAnonWorkers, nil); err != nil {
		return err
	}
	if err := inRange("--max-anon-workers-per-addr", int64(cfg.MaxAnonWorkersPerAddr), 1, maxAnonWorkers, nil); err != nil {
		return err
	}
	if err := inRange("--max-worker-slots", int64(cfg.MaxWorkerSlots), 1, 65535, nil); err != nil {
		return err
	}
	if err := inRange("--max-compiles", int64(cfg.MaxCompiles), 0, maxCompiles, nil); err != nil {
		return err
	}
	if cfg.CompileTimeout <= 0 || cfg.CompileTimeout > maxCompileTimeout {
		return usagef("--compile-timeout %v: want more than 0 and at most %v", cfg.CompileTimeout, maxCompileTimeout)
	}
	cfg.AllowHosts = splitList(allowHost)
	cfg.TrustedProxies = splitList(trustedProxy)
	if _, err := server.ParseNetworks(cfg.TrustedProxies); err != nil {
		return usagef("--trusted-proxy: %v", err)
	}
	cfg.MaxBody = int64(maxBody)
	cfg.MaxInput = int64(maxInput)
	cfg.PublicRead = splitList(publicRead)
	cfg.AllowOrigins = splitList(allowOrigin)
	cfg.Logger = slog.New(slog.NewTextHandler(env.stderr, nil))
	if *pprofAddr != "" {
		addr, stop, err := servePprof(ctx, *pprofAddr, cfg.Logger)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(env.stdout, "pprof on %s\n", addr)
	}
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "tabreduce listening on %s\n", srv.URL())
	fmt.Fprintf(env.stdout, "dashboard: %s/dashboard   contribute a tab: %s/worker\n", srv.URL(), srv.URL())
	if a := srv.RedisAddr(); a != "" {
		fmt.Fprintf(env.stdout, "redis protocol on %s\n", a)
	}
	<-ctx.Done()
	return srv.Close()
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
