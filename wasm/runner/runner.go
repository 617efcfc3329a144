// Package runner runs job modules natively on wazero. It compiles each module
// once (with wazero's on-disk compilation cache), addresses modules by the
// sha256 of their bytes, keeps a pool of instances so each goroutine gets its
// own (an instance is not safe for concurrent use), and enforces the limits
// that make untrusted modules safe to run: a WASI import allowlist, a
// per-call deadline, a linear memory cap and an output cap.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Defaults for Config.
const (
	DefaultMemoryLimitPages = 4096 // 256 MiB
	DefaultRecyclePages     = 1024 // 64 MiB
	DefaultCallTimeout      = 2 * time.Minute
	DefaultMaxOutputBytes   = 64 << 20
	DefaultCompileTimeout   = 10 * time.Second
)

// Config sets the runner's limits. Zero values take the defaults.
type Config struct {
	// CacheDir holds wazero's compilation cache; empty keeps it in memory.
	CacheDir string
	// ModuleDir, if set, stores every compiled module as <sha256>.wasm so
	// that a later runner can load it by hash.
	ModuleDir string
	// MemoryLimitPages caps an instance's linear memory (64 KiB pages).
	MemoryLimitPages uint32
	// RecyclePages: an instance whose memory grew past this is closed after
	// its call instead of being reused, since linear memory never shrinks.
	RecyclePages uint32
	// CallTimeout bounds one task call, instantiation included.
	CallTimeout time.Duration
	// MaxOutputBytes caps the output of one call.
	MaxOutputBytes int
	// MaxIdle bounds the idle instances kept per module (default GOMAXPROCS).
	MaxIdle int
	// CompileTimeout bounds the start of a module that Compile checks (its
	// _initialize), and the wait for a place among MaxCompiles (default
	// DefaultCompileTimeout).
	CompileTimeout time.Duration
	// MaxCompiles bounds the Compile calls at work at once: compiling is
	// the costliest thing an upload asks of the server (default half of
	// GOMAXPROCS, at least 1). CompileTrusted is not counted.
	MaxCompiles int
	// Logger receives one line per discarded instance; default slog.Default.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if c.RecyclePages == 0 {
		c.RecyclePages = DefaultRecyclePages
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.MaxIdle <= 0 {
		c.MaxIdle = runtime.GOMAXPROCS(0)
	}
	if c.CompileTimeout <= 0 {
		c.CompileTimeout = DefaultCompileTimeout
	}
	if c.MaxCompiles <= 0 {
		c.MaxCompiles = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Runner compiles and runs job modules. It is safe for concurrent use.
//
// It holds two wazero runtimes. Modules from Compile run on one compiled with
// termination checks (WithCloseOnContextDone), so a call that runs past its
// deadline is stopped even inside an infinite loop. Those checks exit to Go at
// every loop header, and Go's wasm code branches through a loop header on
// almost every jump, which makes Go modules about 6× slower. Modules from
// CompileTrusted run on a runtime without the checks: full speed, but a call
// that never returns cannot be stopped. See wasm/ABI.md for the figures.
type Runner struct {
	cfg     Config
	rt      wazero.Runtime // with termination checks
	trusted wazero.Runtime // without
	cache   wazero.CompilationCache

	compiling chan struct{} // a place per Compile at work (MaxCompiles)

	mu      sync.Mutex
	modules map[string]*module
}

// New starts a runner with its own wazero runtime. Close releases it.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	cfg = cfg.withDefaults()
	r := &Runner{cfg: cfg, modules: map[string]*module{}, compiling: make(chan struct{}, cfg.MaxCompiles)}
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("runner: compilation cache %s: %w", cfg.CacheDir, err)
		}
		r.cache = cache
	}
	var err error
	if r.rt, err = r.newRuntime(ctx, true); err == nil {
		r.trusted, err = r.newRuntime(ctx, false)
	}
	if err != nil {
		r.Close(ctx)
		return nil, err
	}
	return r, nil
}

// newRuntime starts a wazero runtime with the memory cap and WASI.
func (r *Runner) newRuntime(ctx context.Context, interruptible bool) (wazero.Runtime, error) {
	rc := wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(r.cfg.MemoryLimitPages).
		WithCloseOnContextDone(interruptible)
	if r.cache != nil {
		rc = rc.WithCompilationCache(r.cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("runner: WASI: %w", err)
	}
	if err := instantiateHost(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return rt, nil
}

// Close closes every instance and compiled module.
func (r *Runner) Close(ctx context.Context) error {
	var err error
	for _, rt := range []wazero.Runtime{r.rt, r.trusted} {
		if rt != nil {
			err = errors.Join(err, rt.Close(ctx))
		}
	}
	if r.cache != nil {
		err = errors.Join(err, r.cache.Close(ctx))
	}
	return err
}
