package mr

import (
	"bytes"
	"errors"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/internal/errfmt"
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
	mark      int
	// emitMap is the Emit of map tasks: the aggregator's, with a combiner.
	// Kept, like emitOut, so that a task does not allocate a method value.
	emitMap, emitOut Emit
	iter             valueIter // the Values of every Reduce and Combine call
}

func newEngine(job Job) *engine {
	e := &engine{job: job}
	e.emitOut = e.emitDirect
	e.emitMap = e.emitOut
	if job.Combine != nil {
		_, sum := job.Combine.(Sum)
		e.agg.init(job.Combine, sum)
		e.emitMap = e.agg.add
		if sum {
			e.emitMap = e.agg.sumEmit()
		}
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
			return e.fail(errfmt.Wrap("init", err))
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
		*st = e.fail(errors.New("panic: " + panicText(r)))
	}
}

func (e *engine) begin() {
	resetCounters()
	e.out, e.mark = abi.BeginResult(e.out[:0])
}

func (e *engine) finish() abi.Status {
	e.out = abi.FinishResult(e.out, e.mark, snapshotCounters())
	return abi.StatusOK
}

// emitDirect appends a pair to the output (no combiner).
func (e *engine) emitDirect(key, value []byte) {
	e.out = abi.AppendPair(e.out, key, value)
}

// runMap runs Map on one chunk.
func (e *engine) runMap(offset uint64, data []byte) (st abi.Status) {
	defer e.recoverInto(&st)
	if err := e.ready(); err != nil {
		return e.fail(err)
	}
	e.begin()
	chunkOffset = offset
	callMeter.start(len(data))
	defer callMeter.stop()
	if e.job.Combine != nil {
		e.agg.reset()
	}
	if err := e.job.Map(data, e.emitMap); err != nil {
		return e.fail(errfmt.Wrap("map at offset "+errfmt.Int(offset), err))
	}
	if e.job.Combine != nil {
		var err error
		if e.out, err = e.agg.flush(e.out); err != nil {
			return e.fail(errfmt.Wrap("combine", err))
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
		if what == "combine" {
			e.out = append(e.out[:0], "the job has no combiner"...)
			return abi.StatusNoCombiner
		}
		return e.fail(errors.New(what + ": the job has none"))
	}
	e.begin()
	callMeter.start(len(stream))
	defer callMeter.stop()
	gr := abi.NewGroupReader(stream)
	for {
		key, vals, n, ok := gr.Next()
		if !ok {
			break
		}
		if err := fn(key, e.iter.reset(vals, n), e.emitOut); err != nil {
			return e.fail(errfmt.Wrap(what+" key "+errfmt.Quote(key), err))
		}
		callMeter.at(gr.Consumed())
	}
	if err := gr.Err(); err != nil {
		return e.fail(badInput(errfmt.Wrap(what+" input", err)))
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
func badInput(err error) error { return &badInputError{err} }

// badInputError is an error that is the host's fault: it matches
// errBadInput with errors.Is and reads as its cause.
type badInputError struct{ cause error }

func (e *badInputError) Error() string   { return "bad input: " + e.cause.Error() }
func (e *badInputError) Unwrap() []error { return []error{errBadInput, e.cause} }

// panicText describes a recovered panic value the way the runtime prints
// the common ones, without package fmt.
func panicText(r any) string {
	switch v := r.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case interface{ String() string }:
		return v.String()
	case int:
		return errfmt.Int(v)
	}
	return "a value that is not an error or a string"
}
