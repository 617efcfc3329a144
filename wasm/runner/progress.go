package runner

import (
	"context"
	"fmt"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// progressKey carries a call's progress sink in its context.
type progressKey struct{}

// WithProgress returns a context under which a module's calls report their
// progress (abi.ImportProgress) to fn: the permille of the call's input
// consumed, 0 to abi.MaxProgress, as the module says it. fn runs on the
// calling goroutine, inside the call, so it must be quick (an atomic store).
// A module that does not import progress never calls it.
func WithProgress(ctx context.Context, fn func(permille uint32)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// progress is the host side of abi.ImportProgress: it hands the value,
// capped at abi.MaxProgress, to the call's sink, if it has one.
func progress(ctx context.Context, stack []uint64) {
	fn, _ := ctx.Value(progressKey{}).(func(uint32))
	if fn == nil {
		return
	}
	fn(min(api.DecodeU32(stack[0]), abi.MaxProgress))
}

// instantiateHost adds the host's own import module (abi.HostModule) to rt.
func instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder(abi.HostModule).
		NewFunctionBuilder().
		WithGoFunction(api.GoFunc(progress), []api.ValueType{api.ValueTypeI32}, nil).
		WithParameterNames("permille").
		Export(abi.ImportProgress).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("runner: host module %s: %w", abi.HostModule, err)
	}
	return nil
}
