package runner

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tetratelabs/wazero/api"
)

// Task names one task for the runner: who asks (for errors and logs), which
// module, with which job parameters.
type Task struct {
	// ID is the caller's id for the task; errors name it.
	ID string
	// Module is the sha256 (hex) that Compile returned.
	Module string
	// Params are the job parameters handed to the module's Init.
	Params []byte
}

// Map runs the module's map over one chunk and returns its output pairs (a
// multiset: their order means nothing) and counters.
//
// For a command module, the chunk is its stdin and t.Params its arguments
// and environment (abi.AppendCommandParams; see CommandParams).
func (r *Runner) Map(ctx context.Context, t Task, c abi.Chunk) (abi.Result, error) {
	if m, err := r.module(ctx, t.Module); err == nil && m.command {
		return r.runCommand(ctx, t, "map", m, c.Data, c.Offset)
	}
	return r.run(ctx, t, "map", func(inst *instance) api.Function { return inst.mapf },
		abi.AppendChunkHeader(nil, c.Offset), c.Data)
}

// Combine runs the module's combiner over a grouped stream (keys strictly
// ascending, see abi.EncodeGroups). A command module has no combiner.
func (r *Runner) Combine(ctx context.Context, t Task, groups []byte) (abi.Result, error) {
	if m, err := r.module(ctx, t.Module); err == nil && m.command {
		return abi.Result{}, &TaskError{Task: t.ID, Op: "combine", Module: t.Module, Err: ErrNoCombiner}
	}
	return r.run(ctx, t, "combine", func(inst *instance) api.Function { return inst.combine }, groups)
}

// Reduce runs the module's reduce over a grouped stream (keys strictly
// ascending, values of each key sorted). A command module reads them as
// key<TAB>value lines, which keys with a tab or newline and values with a
// newline cannot be (abi.ErrNotLines, a job error).
func (r *Runner) Reduce(ctx context.Context, t Task, groups []byte) (abi.Result, error) {
	if m, err := r.module(ctx, t.Module); err == nil && m.command {
		lines, err := abi.AppendGroupLines(nil, groups)
		if err != nil {
			return abi.Result{}, &TaskError{Task: t.ID, Op: "reduce", Module: t.Module, Err: fmt.Errorf("%w: %w", ErrJob, err)}
		}
		return r.runCommand(ctx, t, "reduce", m, lines, 0)
	}
	return r.run(ctx, t, "reduce", func(inst *instance) api.Function { return inst.reduce }, groups)
}

// run executes one task call on an instance of the task's module, under the
// call deadline, and returns the instance to the pool if it is still sound.
func (r *Runner) run(ctx context.Context, t Task, op string, fn func(*instance) api.Function, input ...[]byte) (abi.Result, error) {
	m, err := r.module(ctx, t.Module)
	if err != nil {
		return abi.Result{}, &TaskError{Task: t.ID, Op: op, Module: t.Module, Err: err}
	}
	ctx, cancel := r.callContext(ctx)
	defer cancel()
	inst, err := r.acquire(ctx, m, t.ID)
	if err != nil {
		return abi.Result{}, err
	}
	res, err := r.task(ctx, inst, t.Params, fn(inst), input...)
	r.release(m, inst, err)
	if err != nil {
		return abi.Result{}, &TaskError{Task: t.ID, Op: op, Module: t.Module, Err: err}
	}
	return res, nil
}

// callContext bounds ctx by the call timeout. When ctx's own deadline comes
// no later (a worker's task timeout, shorter than the call timeout by
// default), ctx already holds the bound and is handed back as it is, with
// no timer of its own.
func (r *Runner) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= r.cfg.CallTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, r.cfg.CallTimeout)
}

// task sets the parameters if they changed, then calls fn.
func (r *Runner) task(ctx context.Context, inst *instance, params []byte, fn api.Function, input ...[]byte) (abi.Result, error) {
	if !inst.paramsSet || !bytes.Equal(params, inst.lastParam) {
		st, out, err := r.call(ctx, inst, inst.params, params)
		if err != nil {
			return abi.Result{}, fmt.Errorf("params: %w", err)
		}
		if err := statusError(st, out); err != nil {
			return abi.Result{}, fmt.Errorf("params: %w", err)
		}
		inst.paramsSet, inst.lastParam = true, bytes.Clone(params)
	}
	st, out, err := r.call(ctx, inst, fn, input...)
	if err != nil {
		return abi.Result{}, err
	}
	if err := statusError(st, out); err != nil {
		return abi.Result{}, err
	}
	res, err := abi.DecodeResult(out)
	if err != nil {
		return abi.Result{}, fmt.Errorf("%w: %w", ErrBadOutput, err)
	}
	return res, nil
}

func statusError(st abi.Status, out []byte) error {
	switch st {
	case abi.StatusOK:
		return nil
	case abi.StatusJobError:
		return fmt.Errorf("%w: %s", ErrJob, out)
	case abi.StatusBadInput:
		return fmt.Errorf("%w: %s", ErrBadInput, out)
	case abi.StatusNoCombiner:
		return ErrNoCombiner
	}
	return fmt.Errorf("%w: unknown status %d", ErrBadOutput, st)
}

// call copies input into the module's buffer, calls fn(ptr, len) and copies
// the output buffer out.
func (r *Runner) call(ctx context.Context, inst *instance, fn api.Function, input ...[]byte) (abi.Status, []byte, error) {
	n := 0
	for _, p := range input {
		n += len(p)
	}
	res, err := inst.alloc.Call(ctx, uint64(n))
	if err != nil {
		return 0, nil, r.classify(ctx, inst.mod, inst.console, err)
	}
	ptr := uint32(res[0])
	mem := inst.mod.Memory()
	off := ptr
	for _, p := range input {
		if !mem.Write(off, p) {
			return 0, nil, fmt.Errorf("%w: %s returned %d, and %d bytes there are out of memory bounds", ErrBadOutput, abi.ExportAlloc, ptr, n)
		}
		off += uint32(len(p))
	}
	if res, err = fn.Call(ctx, uint64(ptr), uint64(n)); err != nil {
		return 0, nil, r.classify(ctx, inst.mod, inst.console, err)
	}
	st := abi.Status(uint32(res[0]))
	if res, err = inst.outfn.Call(ctx); err != nil {
		return 0, nil, r.classify(ctx, inst.mod, inst.console, err)
	}
	optr, olen := uint32(res[0]>>32), uint32(res[0])
	if int64(olen) > int64(r.cfg.MaxOutputBytes) {
		return 0, nil, fmt.Errorf("%w: %d bytes, the cap is %d", ErrOutputTooLarge, olen, r.cfg.MaxOutputBytes)
	}
	out, ok := mem.Read(optr, olen)
	if !ok {
		return 0, nil, fmt.Errorf("%w: output at %d+%d is out of memory bounds", ErrBadOutput, optr, olen)
	}
	return st, bytes.Clone(out), nil
}
