package runner

import (
	"errors"
	"fmt"
)

// Errors a caller can branch on with errors.Is. Every error from a task is a
// *TaskError wrapping one of them (or a context error).
var (
	// ErrBadModule: the bytes are not a valid wasm module, an export has the
	// wrong signature, _initialize failed, or the ABI version is unknown.
	ErrBadModule = errors.New("bad module")
	// ErrMissingExport: a required ABI export is absent.
	ErrMissingExport = errors.New("missing export")
	// ErrImportNotAllowed: the module imports something outside the WASI
	// allowlist (abi.AllowedImports).
	ErrImportNotAllowed = errors.New("import not allowed")
	// ErrUnknownModule: no module with that sha256 was compiled or stored.
	ErrUnknownModule = errors.New("unknown module")
	// ErrTimeout: a call ran past its deadline and was stopped.
	ErrTimeout = errors.New("timeout")
	// ErrOutOfMemory: the module needed more linear memory than the cap.
	ErrOutOfMemory = errors.New("out of memory")
	// ErrTrap: the module trapped or exited (unreachable, bad memory access,
	// a Go runtime fatal error...).
	ErrTrap = errors.New("trap")
	// ErrOutputTooLarge: a call's output exceeded the output cap.
	ErrOutputTooLarge = errors.New("output too large")
	// ErrBadOutput: the module's output does not follow the ABI framing.
	ErrBadOutput = errors.New("malformed output")
	// ErrJob: the job itself returned an error or panicked (recovered by
	// the SDK); the instance stays usable.
	ErrJob = errors.New("job error")
	// ErrBadInput: the module rejected the framing the host sent.
	ErrBadInput = errors.New("module rejected input")
	// ErrNoCombiner: Combine was called on a module without a combiner.
	ErrNoCombiner = errors.New("the module has no combiner")
	// ErrBusy: Compile found no place among Config.MaxCompiles in time.
	ErrBusy = errors.New("compiler busy")
)

// TaskError says which task failed, doing what, on which module.
type TaskError struct {
	Task   string // the caller's task id
	Op     string // "map", "combine", "reduce", "params", "instantiate"
	Module string // sha256 of the module
	Err    error
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("task %s: %s on module %.12s: %v", e.Task, e.Op, e.Module, e.Err)
}

func (e *TaskError) Unwrap() error { return e.Err }
