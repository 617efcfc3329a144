package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// module is one compiled module and its idle instances.
type module struct {
	sha      string
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	// command: a WASI command (wasm/ABI.md "Command modules"), run as a
	// fresh instance per task; else a reactor, instances pooled in idle.
	command bool

	mu   sync.Mutex
	idle []*instance
}

// Compile validates and compiles a module and returns its sha256 (hex), the
// name to run it by. Compiling the same bytes again is free. The module is
// either a reactor (the ABI's exports) or a WASI command (it exports _start
// and none of them). A reactor is checked for its WASI imports, its exports
// and their signatures, and its ABI version; one instance is started to run
// _initialize, and kept. A command is checked for its imports and exports.
//
// Calls of the module are interruptible: a call past its deadline is stopped
// wherever it is. That costs speed; see CompileTrusted.
//
// Compiling is bounded: at most Config.MaxCompiles at once (a call that
// finds no place within CompileTimeout, or before ctx ends, fails with
// ErrBusy), and the module's _initialize must return within CompileTimeout
// of its start (else ErrTimeout).
func (r *Runner) Compile(ctx context.Context, wasm []byte) (string, error) {
	if sha, ok := r.compiled(wasm); ok {
		return sha, nil
	}
	wait := time.NewTimer(r.cfg.CompileTimeout)
	defer wait.Stop()
	select {
	case r.compiling <- struct{}{}:
		defer func() { <-r.compiling }()
	case <-wait.C:
		return "", fmt.Errorf("%w: %d modules are being compiled; try again later", ErrBusy, r.cfg.MaxCompiles)
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %d modules are being compiled: %w", ErrBusy, r.cfg.MaxCompiles, ctx.Err())
	}
	sha, err := r.compile(ctx, wasm, r.rt, r.cfg.CompileTimeout)
	if errors.Is(err, ErrTimeout) && ctx.Err() == nil {
		return "", fmt.Errorf("%w: the module's start (_initialize) did not finish within %v", ErrTimeout, r.cfg.CompileTimeout)
	}
	return sha, err
}

// Compiling reports how many Compile calls hold a place among MaxCompiles
// now: compiling, or starting the module they compiled.
func (r *Runner) Compiling() int { return len(r.compiling) }

// compiled returns the sha256 of wasm and whether it is compiled already.
func (r *Runner) compiled(wasm []byte) (string, bool) {
	sum := sha256.Sum256(wasm)
	sha := hex.EncodeToString(sum[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.modules[sha]
	return sha, ok
}

// CompileTrusted is Compile for modules whose code is trusted, such as the
// built-in jobs: they run without wazero's termination checks, about 6×
// faster for Go modules, but a call that loops forever cannot be stopped
// (the deadline is only noticed when it returns). Memory and output caps
// still apply.
//
// A Runner holds one module per hash: whichever of Compile and
// CompileTrusted saw the bytes first decides how they run.
func (r *Runner) CompileTrusted(ctx context.Context, wasm []byte) (string, error) {
	return r.compile(ctx, wasm, r.trusted, r.cfg.CallTimeout)
}

// compile compiles wasm on rt and, for a reactor, starts one instance,
// whose _initialize gets startTimeout. Compiling itself is not bounded by
// it: its time follows the module's size (bounded by the caller), not
// anything the module does.
func (r *Runner) compile(ctx context.Context, wasm []byte, rt wazero.Runtime, startTimeout time.Duration) (string, error) {
	sha, ok := r.compiled(wasm)
	if ok {
		return sha, nil
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return "", fmt.Errorf("module %.12s: %w: %w", sha, ErrBadModule, err)
	}
	command := isCommand(compiled)
	check := validate
	if command {
		check = validateCommand
	}
	if err := check(compiled); err != nil {
		compiled.Close(ctx)
		return "", fmt.Errorf("module %.12s: %w", sha, err)
	}
	m := &module{sha: sha, rt: rt, compiled: compiled, command: command}
	if !command {
		sctx, cancel := context.WithTimeout(ctx, startTimeout)
		inst, err := r.instantiate(sctx, m, "compile")
		cancel()
		if err != nil {
			compiled.Close(ctx)
			return "", err
		}
		m.idle = append(m.idle, inst)
	}
	if r.cfg.ModuleDir != "" {
		if err := storeModule(r.cfg.ModuleDir, sha, wasm); err != nil {
			return "", err
		}
	}
	r.mu.Lock()
	if _, ok := r.modules[sha]; ok { // compiled concurrently
		r.mu.Unlock()
		compiled.Close(ctx)
		return sha, nil
	}
	r.modules[sha] = m
	r.mu.Unlock()
	return sha, nil
}

// module returns the compiled module with the given hash, loading it from
// ModuleDir if needed.
func (r *Runner) module(ctx context.Context, sha string) (*module, error) {
	r.mu.Lock()
	m, ok := r.modules[sha]
	r.mu.Unlock()
	if ok {
		return m, nil
	}
	if r.cfg.ModuleDir == "" {
		return nil, fmt.Errorf("module %.12s: %w", sha, ErrUnknownModule)
	}
	wasm, err := os.ReadFile(filepath.Join(r.cfg.ModuleDir, sha+".wasm"))
	if err != nil {
		return nil, fmt.Errorf("module %.12s: %w: %w", sha, ErrUnknownModule, err)
	}
	got, err := r.Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	if got != sha {
		return nil, fmt.Errorf("module %.12s: stored file hashes to %.12s: %w", sha, got, ErrUnknownModule)
	}
	return r.module(ctx, sha)
}

func storeModule(dir, sha string, wasm []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("module store: %w", err)
	}
	tmp, err := os.CreateTemp(dir, sha+".*.tmp")
	if err != nil {
		return fmt.Errorf("module store: %w", err)
	}
	_, werr := tmp.Write(wasm)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("module store: %w", errors.Join(werr, cerr))
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, sha+".wasm"))
}

// signatures are the wasm types of the ABI exports: params, then results.
var signatures = map[string][2][]api.ValueType{
	abi.ExportVersion: {nil, {api.ValueTypeI32}},
	abi.ExportAlloc:   {{api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ExportParams:  {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ExportMap:     {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ExportCombine: {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ExportReduce:  {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ExportOutput:  {nil, {api.ValueTypeI64}},
}

// isCommand reports whether a module is a WASI command: it exports _start
// and not the ABI's version export.
func isCommand(c wazero.CompiledModule) bool {
	exports := c.ExportedFunctions()
	_, start := exports[abi.ExportStart]
	_, version := exports[abi.ExportVersion]
	return start && !version
}

// checkImports checks a module's imports against an allowlist and that it
// defines and exports its own memory.
// A reactor may also import abi.ImportProgress, with its one signature.
func checkImports(c wazero.CompiledModule, allowed func(string) bool, reactor bool) error {
	var refused []string
	for _, f := range c.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch {
		case mod == abi.WASIModule && allowed(name):
		case reactor && mod == abi.HostModule && name == abi.ImportProgress:
			if !slices.Equal(f.ParamTypes(), []api.ValueType{api.ValueTypeI32}) || len(f.ResultTypes()) != 0 {
				return fmt.Errorf("%w: import %s.%s has type %v -> %v, want [i32] -> []", ErrBadModule, mod, name,
					typeNames(f.ParamTypes()), typeNames(f.ResultTypes()))
			}
		default:
			refused = append(refused, mod+"."+name)
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("%w: %s", ErrImportNotAllowed, strings.Join(refused, ", "))
	}
	for _, m := range c.ImportedMemories() {
		mod, name, _ := m.Import()
		return fmt.Errorf("%w: memory %s.%s (a module must define its own)", ErrImportNotAllowed, mod, name)
	}
	if _, ok := c.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("%w: memory %q", ErrMissingExport, abi.ExportMemory)
	}
	return nil
}

// validateCommand checks a command's imports and its _start.
func validateCommand(c wazero.CompiledModule) error {
	if err := checkImports(c, abi.CommandImport, false); err != nil {
		return err
	}
	if def := c.ExportedFunctions()[abi.ExportStart]; len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
		return fmt.Errorf("%w: export %q must take and return nothing", ErrBadModule, abi.ExportStart)
	}
	return nil
}

// validate checks a reactor's imports against the allowlist and its
// exports against the ABI.
func validate(c wazero.CompiledModule) error {
	if err := checkImports(c, func(name string) bool { return abi.AllowedImports[name] }, true); err != nil {
		return err
	}
	exports := c.ExportedFunctions()
	for _, name := range abi.RequiredExports {
		def, ok := exports[name]
		if !ok {
			return fmt.Errorf("%w: function %q", ErrMissingExport, name)
		}
		sig := signatures[name]
		if !slices.Equal(def.ParamTypes(), sig[0]) || !slices.Equal(def.ResultTypes(), sig[1]) {
			return fmt.Errorf("%w: export %q has type %v -> %v, want %v -> %v", ErrBadModule, name,
				typeNames(def.ParamTypes()), typeNames(def.ResultTypes()), typeNames(sig[0]), typeNames(sig[1]))
		}
	}
	if def, ok := exports[abi.ExportInitialize]; ok && (len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0) {
		return fmt.Errorf("%w: export %q must take and return nothing", ErrBadModule, abi.ExportInitialize)
	}
	return nil
}

func typeNames(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}
