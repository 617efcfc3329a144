//go:build !wasip1

package mr

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
)

// Output is the result of a whole job: pairs sorted by key then value, and
// the counters summed over all tasks.
type Output = driver.Output

// localMu serialises native runs: counters and the chunk offset are package
// state, as they are inside a module.
var localMu sync.Mutex

// RunLocal runs job natively over input with the given parameters: the
// reference output a module built from the same source must reproduce. It
// splits, shuffles and groups exactly as a host does (package driver) and
// frames every task's input and output with the ABI's codec.
func RunLocal(job Job, input, params []byte) (Output, error) {
	return RunLocalOptions(context.Background(), job, input, params, driver.Options{})
}

// RunLocalOptions is RunLocal with a context and driver options (chunk size,
// reducers). Parallelism is forced to 1.
func RunLocalOptions(ctx context.Context, job Job, input, params []byte, opts driver.Options) (Output, error) {
	localMu.Lock()
	defer localMu.Unlock()
	x := &localExecutor{e: newEngine(job)}
	if st := x.e.setParams(params); st != abi.StatusOK {
		return Output{}, errors.New(string(x.e.out))
	}
	opts.Parallelism = 1
	return driver.Run(ctx, x, input, opts)
}

// localExecutor runs tasks on an engine in this process.
type localExecutor struct {
	e *engine
}

func (x *localExecutor) Map(_ context.Context, c abi.Chunk) (abi.Result, error) {
	return x.result(x.e.runMap(c.Offset, c.Data))
}

func (x *localExecutor) Reduce(_ context.Context, groups []byte) (abi.Result, error) {
	return x.result(x.e.runReduce(groups))
}

// result decodes the engine's output buffer, copied because the engine
// reuses it.
func (x *localExecutor) result(st abi.Status) (abi.Result, error) {
	out := bytes.Clone(x.e.out)
	if st != abi.StatusOK {
		return abi.Result{}, errors.New(string(out))
	}
	return abi.DecodeResult(out)
}

// reportProgress receives a call's progress (callMeter). Natively it goes
// nowhere; the SDK's tests listen to it.
var reportProgress = func(permille uint32) {}
