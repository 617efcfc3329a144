package runner

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
)

// Executor returns a driver.Executor that runs the tasks of one job (module
// plus parameters) on r. It is safe for concurrent use: each task takes its
// own instance. Task ids are "<name>/map-N" and "<name>/reduce-N".
func (r *Runner) Executor(name, module string, params []byte) driver.Executor {
	return &executor{r: r, name: name, module: module, params: params}
}

type executor struct {
	r              *Runner
	name, module   string
	params         []byte
	nmaps, reduces atomic.Int64
}

func (x *executor) task(kind string, n *atomic.Int64) Task {
	return Task{ID: fmt.Sprintf("%s/%s-%d", x.name, kind, n.Add(1)-1), Module: x.module, Params: x.params}
}

func (x *executor) Map(ctx context.Context, c abi.Chunk) (abi.Result, error) {
	return x.r.Map(ctx, x.task("map", &x.nmaps), c)
}

func (x *executor) Reduce(ctx context.Context, groups []byte) (abi.Result, error) {
	return x.r.Reduce(ctx, x.task("reduce", &x.reduces), groups)
}
