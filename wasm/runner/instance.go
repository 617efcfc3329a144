package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// instance is one instantiated module with its ABI functions looked up. It
// is used by one goroutine at a time.
type instance struct {
	mod                                         api.Module
	alloc, params, mapf, combine, reduce, outfn api.Function
	console                                     *tailBuffer

	paramsSet bool
	lastParam []byte
}

// randSeed seeds the random_get stream: the same bytes for every instance, so
// runs are deterministic.
var randSeed = [32]byte{'t', 'a', 'b', 'r', 'e', 'd', 'u', 'c', 'e'}

// instantiate starts a new instance of m and runs its initialiser.
func (r *Runner) instantiate(ctx context.Context, m *module, task string) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	wrap := func(err error) error { return &TaskError{Task: task, Op: "instantiate", Module: m.sha, Err: err} }
	console := &tailBuffer{max: 4 << 10}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(console).
		WithStderr(console).
		WithRandSource(rand.NewChaCha8(randSeed))
	mod, err := m.rt.InstantiateModule(withMemory(ctx), m.compiled, cfg)
	if err != nil {
		return nil, wrap(r.classify(ctx, nil, console, err))
	}
	inst := &instance{
		mod:     mod,
		alloc:   mod.ExportedFunction(abi.ExportAlloc),
		params:  mod.ExportedFunction(abi.ExportParams),
		mapf:    mod.ExportedFunction(abi.ExportMap),
		combine: mod.ExportedFunction(abi.ExportCombine),
		reduce:  mod.ExportedFunction(abi.ExportReduce),
		outfn:   mod.ExportedFunction(abi.ExportOutput),
		console: console,
	}
	if init := mod.ExportedFunction(abi.ExportInitialize); init != nil {
		if _, err := init.Call(ctx); err != nil {
			mod.Close(ctx)
			return nil, wrap(fmt.Errorf("%s: %w", abi.ExportInitialize, r.classify(ctx, mod, console, err)))
		}
	}
	v, err := mod.ExportedFunction(abi.ExportVersion).Call(ctx)
	if err != nil {
		mod.Close(ctx)
		return nil, wrap(r.classify(ctx, mod, console, err))
	}
	if uint32(v[0]) != abi.Version {
		mod.Close(ctx)
		return nil, wrap(fmt.Errorf("%w: ABI version %d, this host speaks %d", ErrBadModule, uint32(v[0]), abi.Version))
	}
	return inst, nil
}

// acquire takes an idle instance of m or starts a new one.
func (r *Runner) acquire(ctx context.Context, m *module, task string) (*instance, error) {
	m.mu.Lock()
	if n := len(m.idle); n > 0 {
		inst := m.idle[n-1]
		m.idle = m.idle[:n-1]
		m.mu.Unlock()
		return inst, nil
	}
	m.mu.Unlock()
	return r.instantiate(ctx, m, task)
}

// release returns inst to m's pool, or closes it if the call failed in a way
// that may have poisoned it, if it grew past the recycle bound, or if the
// pool is full.
func (r *Runner) release(m *module, inst *instance, callErr error) {
	reason := ""
	switch {
	case callErr != nil && !errors.Is(callErr, ErrJob) && !errors.Is(callErr, ErrBadInput) &&
		!errors.Is(callErr, ErrOutputTooLarge) && !errors.Is(callErr, ErrNoCombiner):
		reason = "call failed"
	case inst.mod.IsClosed():
		reason = "closed"
	case inst.mod.Memory().Size()/65536 > r.cfg.RecyclePages:
		reason = "memory above recycle bound"
	}
	if reason == "" {
		m.mu.Lock()
		if len(m.idle) < r.cfg.MaxIdle {
			m.idle = append(m.idle, inst)
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		reason = "pool full"
	}
	if reason != "pool full" {
		r.cfg.Logger.Debug("runner: instance discarded", "module", m.sha[:12], "reason", reason,
			"memory_pages", inst.mod.Memory().Size()/65536)
	}
	inst.mod.Close(context.Background())
}

// classify turns a wazero call error into one of the package's errors. mod
// may be nil when instantiation itself failed.
func (r *Runner) classify(ctx context.Context, mod api.Module, console *tailBuffer, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: call stopped at its deadline (%v)", ErrTimeout, r.cfg.CallTimeout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("call cancelled: %w", ctx.Err())
	}
	out := console.String()
	nearLimit := mod != nil && !mod.IsClosed() && mod.Memory() != nil &&
		mod.Memory().Size()/65536+64 >= r.cfg.MemoryLimitPages
	if strings.Contains(out, "out of memory") || nearLimit {
		return fmt.Errorf("%w: the memory cap is %d pages (%d MiB)%s", ErrOutOfMemory,
			r.cfg.MemoryLimitPages, r.cfg.MemoryLimitPages/16, consoleSuffix(out))
	}
	return fmt.Errorf("%w: %v%s", ErrTrap, err, consoleSuffix(out))
}

func consoleSuffix(out string) string {
	// A Go panic or fatal error leads with its cause; the goroutine dump
	// that follows is noise in an error message.
	if i := strings.Index(out, "\n\ngoroutine "); i >= 0 {
		out = out[:i]
	}
	out = strings.TrimSpace(out)
	if len(out) > 512 {
		out = out[:512] + "…"
	}
	if out == "" {
		return ""
	}
	return "; module output: " + out
}

// tailBuffer keeps the first max bytes a module writes to stdout/stderr
// (a Go panic or fatal error leads with its cause).
type tailBuffer struct {
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	if room := t.max - t.buf.Len(); room > 0 {
		t.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }
