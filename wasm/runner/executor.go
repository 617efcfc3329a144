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

// JobExecutor is Executor for a job whose phases run different modules
// (compiled already), reactors or commands: a command's tasks get the
// arguments and environment that params name (CommandParams).
func (r *Runner) JobExecutor(ctx context.Context, name, mapper, reducer string, params []byte) (driver.Executor, error) {
	x := &executor{r: r, name: name, module: mapper, reducer: reducer, params: params, reduceParams: params}
	for _, p := range []struct {
		sha string
		out *[]byte
	}{{mapper, &x.params}, {reducer, &x.reduceParams}} {
		cmd, err := r.IsCommand(ctx, p.sha)
		if err != nil {
			return nil, err
		}
		if cmd {
			if *p.out, err = CommandParams(params); err != nil {
				return nil, err
			}
		}
	}
	return x, nil
}

type executor struct {
	r                    *Runner
	name, module         string
	reducer              string // "" is module
	params, reduceParams []byte
	nmaps, reduces       atomic.Int64
}

func (x *executor) task(kind string, n *atomic.Int64) Task {
	return Task{ID: fmt.Sprintf("%s/%s-%d", x.name, kind, n.Add(1)-1), Module: x.module, Params: x.params}
}

func (x *executor) Map(ctx context.Context, c abi.Chunk) (abi.Result, error) {
	return x.r.Map(ctx, x.task("map", &x.nmaps), c)
}

func (x *executor) Reduce(ctx context.Context, groups []byte) (abi.Result, error) {
	t := x.task("reduce", &x.reduces)
	if x.reducer != "" {
		t.Module, t.Params = x.reducer, x.reduceParams
	}
	return x.r.Reduce(ctx, t, groups)
}
