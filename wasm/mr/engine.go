package mr

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// engine runs the tasks of one job and owns the output buffer. The module
// exports and RunLocal both go through it, so the native twin exercises the
// same code and framing as the module.
type engine struct {
	job       Job
	params    []byte
	paramsSet bool
	out       []byte // the last result frame or error message
	agg       aggregator
	emitErr   error // first error met by emit (e.g. Sum on a non-integer)
	mark      int
}

func newEngine(job Job) *engine {
	e := &engine{job: job}
	if job.Combine != nil {
		_, sum := job.Combine.(Sum)
		e.agg.init(job.Combine, sum)
	}
	return e
}

// setParams hands the parameters to the job's Init.
func (e *engine) setParams(p []byte) (st abi.Status) {
	defer e.recoverInto(&st)
	if e.paramsSet && bytes.Equal(p, e.params) {
		return e.ok()
	}
	e.params, e.paramsSet = bytes.Clone(p), true
	if e.job.Init != nil {
		if err := e.job.Init(e.params); err != nil {
			e.paramsSet = false
			return e.fail(fmt.Errorf("init: %w", err))
		}
	}
	return e.ok()
}

// ok writes an empty result.
func (e *engine) ok() abi.Status {
	e.out = abi.AppendResult(e.out[:0], abi.Result{})
	return abi.StatusOK
}

func (e *engine) fail(err error) abi.Status {
	e.out = append(e.out[:0], err.Error()...)
	if errors.Is(err, errBadInput) {
		return abi.StatusBadInput
	}
	return abi.StatusJobError
}

var errBadInput = errors.New("bad input")

// recoverInto turns a panic in job code into a job error, so the instance
// stays healthy and the host learns what happened.
func (e *engine) recoverInto(st *abi.Status) {
	if r := recover(); r != nil {
		*st = e.fail(fmt.Errorf("panic: %v", r))
	}
}

func (e *engine) begin() {
	resetCounters()
	e.emitErr = nil
	e.out, e.mark = abi.BeginResult(e.out[:0])
}

func (e *engine) finish() abi.Status {
	if e.emitErr != nil {
		return e.fail(e.emitErr)
	}
	e.out = abi.FinishResult(e.out, e.mark, snapshotCounters())
	return abi.StatusOK
}

// emitDirect appends a pair to the output (no combiner).
func (e *engine) emitDirect(key, value []byte) {
	e.out = abi.AppendPair(e.out, key, value)
}

// emitAggregate feeds a pair to the combining table.
func (e *engine) emitAggregate(key, value []byte) {
	if err := e.agg.add(key, value); err != nil && e.emitErr == nil {
		e.emitErr = err
	}
}

// runMap runs Map on one chunk.
func (e *engine) runMap(offset uint64, data []byte) (st abi.Status) {
	defer e.recoverInto(&st)
	if err := e.ready(); err != nil {
		return e.fail(err)
	}
	e.begin()
	chunkOffset = offset
	emit := e.emitDirect
	if e.job.Combine != nil {
		e.agg.reset()
		emit = e.emitAggregate
	}
	if err := e.job.Map(data, emit); err != nil {
		return e.fail(fmt.Errorf("map at offset %d: %w", offset, err))
	}
	if e.job.Combine != nil && e.emitErr == nil {
		var err error
		if e.out, err = e.agg.flush(e.out); err != nil {
			return e.fail(fmt.Errorf("combine: %w", err))
		}
	}
	return e.finish()
}

// runGroups runs fn (Reduce or Combine) on every group of a grouped stream.
func (e *engine) runGroups(stream []byte, what string, fn func([]byte, Values, Emit) error) (st abi.Status) {
	defer e.recoverInto(&st)
	if err := e.ready(); err != nil {
		return e.fail(err)
	}
	if fn == nil {
		return e.fail(fmt.Errorf("%s: the job has none", what))
	}
	e.begin()
	gr := abi.NewGroupReader(stream)
	for {
		key, vals, n, ok := gr.Next()
		if !ok {
			break
		}
		if err := fn(key, newValues(vals, n), e.emitDirect); err != nil {
			return e.fail(fmt.Errorf("%s key %q: %w", what, key, err))
		}
	}
	if err := gr.Err(); err != nil {
		return e.fail(badInput(fmt.Errorf("%s input: %w", what, err)))
	}
	return e.finish()
}

func (e *engine) runReduce(stream []byte) abi.Status {
	return e.runGroups(stream, "reduce", e.job.Reduce)
}

func (e *engine) runCombine(stream []byte) abi.Status {
	var fn func([]byte, Values, Emit) error
	if e.job.Combine != nil {
		fn = e.job.Combine.Combine
	}
	return e.runGroups(stream, "combine", fn)
}

// ready checks that Init has run, running it with no parameters if the host
// never sent any.
func (e *engine) ready() error {
	if e.job.Map == nil || e.job.Reduce == nil {
		return errors.New("job has no Map or no Reduce")
	}
	if !e.paramsSet {
		if st := e.setParams(nil); st != abi.StatusOK {
			return errors.New(string(e.out))
		}
	}
	return nil
}

// badInput marks err as the host's fault.
func badInput(err error) error { return fmt.Errorf("%w: %w", errBadInput, err) }
