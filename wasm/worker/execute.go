package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// errResultTooLarge: a task's partitions exceed Welcome.MaxResultBytes.
var errResultTooLarge = errors.New("result too large")

// Progress a running task reports in heartbeats. While the module maps or
// reduces, it is what the module reports of its input consumed
// (abi.ImportProgress), scaled to the stage's share (callPercent); a module
// that reports nothing stays at 0 until the stages after the call, which
// these mark.
const (
	progressCombining = 50
	progressSorting   = 90
)

// callPercent scales a call's reported permille to the share of the task
// its call takes: up to progressCombining for a map whose output is then
// combined, else up to progressSorting. The combine call reports within
// progressCombining..progressSorting (mapTask).
func callPercent(t *workerproto.Task, permille uint32) uint32 {
	span := uint32(progressSorting)
	if t.Phase == workerproto.PhaseMap && t.Flags&workerproto.FlagCombine != 0 {
		span = progressCombining
	}
	return permille * span / abi.MaxProgress
}

// executor runs tasks on a runner and shapes their output the way the
// protocol requires: partitioned by abi.Partition and sorted.
type executor struct {
	r       *runner.Runner
	modules ModuleSource // nil: the runner has every module already
	// maxResult bounds the partition bytes of one result; 0 is no bound.
	maxResult int
	// noCombiner holds the modules (sha) found to have no combiner, whose
	// map output is then sent without sorting it for a combine call.
	noCombiner sync.Map
}

// scratch is one slot's reusable memory, so that a slot running task after
// task does not allocate its sort buffers anew.
type scratch struct {
	items  []item
	groups []byte
}

// item is one output pair and its partition.
type item struct {
	part int
	abi.Pair
}

// maxScratchItems bounds the sort buffer a slot keeps between tasks.
const maxScratchItems = 1 << 16

// Execute runs one task on r exactly as a worker does (map, then the
// combiner if the task asks for it, then partitioning by abi.Partition
// and sorting; or reduce, then sorting) and returns its result, with
// Elapsed set. The server calls it to run a task itself, to check a
// worker's result against its own (spot checks) or to learn a task's
// answer. r must hold the task's module already; the result's size is not
// bounded. Errors are those a worker would report as the task's failure.
func Execute(ctx context.Context, r *runner.Runner, t *workerproto.Task) (workerproto.Result, error) {
	x := executor{r: r}
	var progress atomic.Uint32
	start := time.Now()
	res, err := x.run(ctx, t, &scratch{}, &progress)
	res.Elapsed = time.Since(start)
	return res, err
}

// run executes one task and returns its result; on error the result is
// empty and the error classifies with failureKind. The module's progress
// reports go to progress.
func (x *executor) run(ctx context.Context, t *workerproto.Task, sc *scratch, progress *atomic.Uint32) (workerproto.Result, error) {
	ctx = runner.WithProgress(ctx, func(permille uint32) { progress.Store(callPercent(t, permille)) })
	return x.runTask(ctx, t, sc, progress)
}

// runTask is run for a caller whose ctx has the progress sink already (a
// session's slot). A ctx whose deadline comes no later than the task's
// timeout holds the bound already and gets no timer of its own.
func (x *executor) runTask(ctx context.Context, t *workerproto.Task, sc *scratch, progress *atomic.Uint32) (workerproto.Result, error) {
	defer sc.reset()
	if t.Timeout > 0 {
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > t.Timeout {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, t.Timeout)
			defer cancel()
		}
	}
	if x.modules != nil {
		if err := x.modules.Prepare(ctx, x.r, t.Module); err != nil {
			return workerproto.Result{}, err
		}
	}
	var name [24]byte
	rt := runner.Task{ID: string(strconv.AppendUint(append(name[:0], '#'), t.ID, 10)), Module: t.Module, Params: t.Params} // as the pages name a copy
	var (
		res abi.Result
		err error
	)
	switch t.Phase {
	case workerproto.PhaseMap:
		res, err = x.mapTask(ctx, rt, t, sc, progress)
	case workerproto.PhaseReduce:
		res, err = x.r.Reduce(ctx, rt, t.Input)
	default:
		err = fmt.Errorf("task %d: phase %d", t.ID, t.Phase)
	}
	if err != nil {
		return workerproto.Result{}, err
	}
	progress.Store(progressSorting)
	r := int(t.Reducers)
	if t.Phase == workerproto.PhaseReduce {
		r = 1
	}
	if x.maxResult > 0 && len(res.Pairs) > x.maxResult {
		return workerproto.Result{}, fmt.Errorf("%w: %d bytes of output, the server takes %d", errResultTooLarge, len(res.Pairs), x.maxResult)
	}
	parts, err := sc.partition(res.Pairs, r)
	if err != nil {
		return workerproto.Result{}, err
	}
	return workerproto.Result{TaskID: t.ID, Counters: res.Counters, Partitions: parts}, nil
}

// mapTask runs map and, when the task asks for it, the combiner over the
// map output sorted and grouped. An empty map output is not combined.
func (x *executor) mapTask(ctx context.Context, rt runner.Task, t *workerproto.Task, sc *scratch, progress *atomic.Uint32) (abi.Result, error) {
	res, err := x.r.Map(ctx, rt, abi.Chunk{Offset: t.Offset, Data: t.Input})
	if err != nil || t.Flags&workerproto.FlagCombine == 0 || len(res.Pairs) == 0 {
		return res, err
	}
	if _, none := x.noCombiner.Load(t.Module); none {
		return res, nil
	}
	progress.Store(progressCombining)
	if _, err := sc.load(res.Pairs, 1); err != nil {
		return abi.Result{}, err
	}
	if distinctKeys(sc.items) {
		// Every key once (the SDK's map-side table already folded them):
		// the combiner would fold nothing, and the ABI lets the host skip it.
		return res, nil
	}
	sc.groups = appendGroups(sc.groups[:0], sc.items)
	ctx = runner.WithProgress(ctx, func(permille uint32) {
		progress.Store(progressCombining + permille*(progressSorting-progressCombining)/abi.MaxProgress)
	})
	comb, err := x.r.Combine(ctx, rt, sc.groups)
	if errors.Is(err, runner.ErrNoCombiner) {
		x.noCombiner.Store(t.Module, true)
		return res, nil // the map output goes as it is
	}
	if err != nil {
		return abi.Result{}, err
	}
	return abi.Result{Pairs: comb.Pairs, Counters: res.Counters.Merge(comb.Counters)}, nil
}

// load reads a pair stream into sc.items with each pair's partition among
// r, sorted by partition, key and value. inOrder reports that the stream was
// in that order already.
func (sc *scratch) load(pairs []byte, r int) (inOrder bool, err error) {
	items := sc.items[:0]
	inOrder = true
	pr := abi.NewPairReader(pairs)
	for k, v, ok := pr.Next(); ok; k, v, ok = pr.Next() {
		it := item{part: abi.Partition(k, r), Pair: abi.Pair{Key: k, Value: v}}
		if inOrder && len(items) > 0 && compareItems(items[len(items)-1], it) > 0 {
			inOrder = false
		}
		items = append(items, it)
	}
	sc.items = items
	if err := pr.Err(); err != nil {
		return false, fmt.Errorf("%w: %w", runner.ErrBadOutput, err)
	}
	if !inOrder {
		slices.SortFunc(items, compareItems)
	}
	return inOrder, nil
}

func compareItems(a, b item) int {
	if a.part != b.part {
		return a.part - b.part
	}
	return a.Compare(b.Pair)
}

// partition splits a pair stream into r sorted partitions. A stream that is
// already in order for r = 1 (a reduce's usual output) is passed through.
func (sc *scratch) partition(pairs []byte, r int) ([][]byte, error) {
	parts := make([][]byte, r)
	if len(pairs) == 0 {
		return parts, nil
	}
	inOrder, err := sc.load(pairs, r)
	if err != nil {
		return nil, err
	}
	if inOrder && r == 1 {
		parts[0] = pairs
		return parts, nil
	}
	out := make([]byte, 0, len(pairs)) // the same pairs re-framed: the same size
	i := 0
	for p := range parts {
		start := len(out)
		for ; i < len(sc.items) && sc.items[i].part == p; i++ {
			out = abi.AppendPair(out, sc.items[i].Key, sc.items[i].Value)
		}
		parts[p] = out[start:len(out):len(out)]
	}
	return parts, nil
}

// appendGroups appends sorted items as a grouped stream (abi.EncodeGroups
// without its allocation).
// distinctKeys reports whether no two sorted items share a key.
func distinctKeys(sorted []item) bool {
	for i := 1; i < len(sorted); i++ {
		if bytes.Equal(sorted[i-1].Key, sorted[i].Key) {
			return false
		}
	}
	return true
}

func appendGroups(dst []byte, sorted []item) []byte {
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && bytes.Equal(sorted[j].Key, sorted[i].Key) {
			j++
		}
		dst = abi.AppendGroupHeader(dst, sorted[i].Key, j-i)
		for _, it := range sorted[i:j] {
			dst = abi.AppendValue(dst, it.Value)
		}
		i = j
	}
	return dst
}

// reset drops the references a task left in the scratch, and the scratch
// itself if a large task grew it.
func (sc *scratch) reset() {
	clear(sc.items)
	sc.items = sc.items[:0]
	if cap(sc.items) > maxScratchItems {
		sc.items = nil
	}
	if cap(sc.groups) > maxScratchItems*16 {
		sc.groups = nil
	}
}

// failureKind classifies a task's error for the FAILURES frame.
func failureKind(err error) workerproto.FailureKind {
	switch {
	case errors.Is(err, errResultTooLarge), errors.Is(err, runner.ErrOutputTooLarge):
		return workerproto.FailureTooLarge
	case errors.Is(err, runner.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return workerproto.FailureTimeout
	case errors.Is(err, ErrModuleUnavailable), errors.Is(err, runner.ErrBadModule),
		errors.Is(err, runner.ErrMissingExport), errors.Is(err, runner.ErrImportNotAllowed),
		errors.Is(err, runner.ErrUnknownModule):
		return workerproto.FailureModule
	case errors.Is(err, runner.ErrJob), errors.Is(err, runner.ErrTrap),
		errors.Is(err, runner.ErrOutOfMemory), errors.Is(err, runner.ErrBadOutput):
		return workerproto.FailureJob
	}
	return workerproto.FailureInternal
}
