package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

// Limits of a Spec, which Submit enforces and clients may show.
const (
	MinChunkSize, MaxChunkSize = 1, 64 << 20 // 1 byte: one task per line, for compute-heavy jobs
	MaxReducers                = 1024
	MaxAttempts                = 100
	MaxTaskTimeout             = 3600 // seconds
)

// CheckSettings checks a spec's settings as a client may send them before
// its input: ranges, params, verify and queue names, each as given (a zero
// is the default). It is part of what Submit checks, so the HTTP layer can
// refuse a bad setting before it takes any input; it never needs the
// module.
func CheckSettings(s Spec) error { return checkSettings(&s) }

// normalizeSpec fills defaults and checks every field of a spec: the one
// place a spec is validated (the HTTP layer only parses).
func normalizeSpec(s *Spec) error {
	if err := checkSettings(s); err != nil {
		return err
	}
	if s.ChunkSize == 0 {
		s.ChunkSize = DefaultChunkSize
	}
	if s.Reducers == 0 {
		s.Reducers = DefaultReducers
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.TaskTimeout == 0 {
		s.TaskTimeout = DefaultTaskTimeout.Seconds()
	}
	switch {
	case specMapper(s) == "" || specReducer(s) == "":
		return invalid("module is required (or mapper and reducer): a built-in job's name or a registered module's sha256")
	case s.Stream && s.InputQueue == "":
		return invalid("stream needs input_queue: a streaming job maps a queue's messages as they arrive")
	case s.Stream && s.OutputQueue == "":
		return invalid("stream needs output_queue: a streaming job's records go there as they are mapped")
	case s.Stream && s.OutputQueue == s.InputQueue:
		return invalid("a streaming job's output_queue must differ from its input_queue")
	}
	if len(s.Params) == 0 || string(s.Params) == "null" {
		s.Params = json.RawMessage("{}")
	}
	v, err := ParseVerify(string(s.Verify))
	if err != nil {
		return invalid("%v", err)
	}
	s.Verify = v
	return nil
}

// specRange is one numeric setting's bounds.
type specRange struct {
	name   string
	v      float64
	lo, hi float64
	unit   string
}

// checkSettings checks every setting that is given (not zero).
func checkSettings(s *Spec) error {
	for _, r := range []specRange{
		{"chunk_size", float64(s.ChunkSize), MinChunkSize, MaxChunkSize, " bytes"},
		{"reducers", float64(s.Reducers), 1, MaxReducers, ""},
		{"max_attempts", float64(s.MaxAttempts), 1, MaxAttempts, ""},
		{"task_timeout", s.TaskTimeout, 1, MaxTaskTimeout, " seconds"},
	} {
		if r.v != 0 && !(r.v >= r.lo && r.v <= r.hi) { // NaN too
			f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
			return invalid("%s must be between %s and %s%s, got %s", r.name, f(r.lo), f(r.hi), r.unit, f(r.v))
		}
	}
	if len(s.Params) > 0 && !json.Valid(s.Params) {
		return invalid("params must be JSON, got %q", truncate(string(s.Params), 40))
	}
	if _, err := ParseVerify(string(s.Verify)); err != nil {
		return invalid("%v", err)
	}
	for _, q := range []string{s.InputQueue, s.OutputQueue} {
		if q == "" {
			continue
		}
		if err := broker.CheckQueueName(q); err != nil {
			return err
		}
	}
	return nil
}

// invalid is a validation error: it is broker.ErrInvalid (which HTTP
// answers 400), and its message says only what is wrong.
func invalid(format string, args ...any) error { return invalidError(fmt.Sprintf(format, args...)) }

type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == broker.ErrInvalid }

// Submit creates a job from spec and its input: the files received in in, or
// the messages of spec.InputQueue (in may then be nil). The job record and
// its map tasks are written in one transaction; on error nothing of the job
// is left behind.
func (e *Engine) Submit(ctx context.Context, spec Spec, in *Input) (st Status, err error) {
	if in == nil {
		if in, err = e.NewInput(); err != nil {
			return Status{}, err
		}
	}
	defer func() {
		if err != nil {
			in.Discard()
		}
	}()
	if err := normalizeSpec(&spec); err != nil {
		return Status{}, err
	}
	rec := jobRecord{ID: in.jobID, Spec: spec, State: StateQueued}
	if err := e.resolveModules(ctx, &rec); err != nil {
		return Status{}, err
	}
	now := time.Now().UTC()
	rec.Submitted = now
	sha := rec.Module
	group := broker.CommitGroup{}
	switch {
	case spec.Stream:
		if len(in.files) > 0 {
			return Status{}, fmt.Errorf("%w: a streaming job takes its input from input_queue, not files", broker.ErrInvalid)
		}
		rec.State = StateMapping
	default:
		if spec.InputQueue != "" {
			leases, err := e.drainQueue(ctx, spec.InputQueue, in)
			if err != nil {
				return Status{}, err
			}
			group.Acks = leases
		}
		if in.size == 0 {
			return Status{}, fmt.Errorf("%w: the input is empty", broker.ErrInvalid)
		}
		tasks, err := in.split(spec.ChunkSize, int64(e.taskInputLimit(&job{rec: rec, mapParams: taskParams(rec.Spec.Params, rec.MapCommand)}, PhaseMap)))
		if err != nil {
			return Status{}, err
		}
		msgs := make([]broker.NewMessage, len(tasks))
		for i, t := range tasks {
			msgs[i].Value, _ = json.Marshal(t)
		}
		group.Pushes = []broker.QueuePush{{Queue: mapQueue(rec.ID), Messages: msgs}}
		rec.Files, rec.MapTasks, rec.BytesIn = in.files, len(tasks), in.size
	}
	if e.shared() && !spec.Stream {
		if err := e.shareInput(ctx, in, &group); err != nil {
			return Status{}, err
		}
	}
	group.RecordSet = []broker.Record{rec.record()}
	applied, err := e.commitOne(ctx, group)
	if err != nil {
		return Status{}, err
	}
	if !applied.Applied {
		return Status{}, fmt.Errorf("input queue %s changed while it was drained: submit again", spec.InputQueue)
	}
	if testHookSubmitted != nil {
		testHookSubmitted(e, rec.ID)
	}
	// When servers share the store, the push event of the job's own tasks
	// may have had the sharer adopt it already (and lease its tasks): that
	// job is the one. Replacing it would orphan its tasks, and a result held
	// on one of them for verification would wait for a replica no
	// dispatcher hands out, until its lease lapsed.
	j := e.jobOf(rec)
	e.mu.Lock()
	adopted := e.jobs[rec.ID]
	if adopted != nil {
		j = adopted
	} else {
		e.jobs[rec.ID] = j
	}
	e.mu.Unlock()
	if adopted == nil {
		e.trackStream(j, +1)
	}
	if e.shared() {
		e.coordinate(ctx, j) // the submitting server coordinates first
	}
	e.log.Info("job submitted", "job", rec.ID, "module", sha[:12], "map_tasks", rec.MapTasks,
		"bytes", rec.BytesIn, "reducers", spec.Reducers, "input_queue", spec.InputQueue, "stream", spec.Stream)
	e.kick()
	return e.status(ctx, j), nil
}

// resolveModules finds the modules of a job's phases, what kind each is,
// and checks a command's parameters.
func (e *Engine) resolveModules(ctx context.Context, rec *jobRecord) error {
	var err error
	if rec.Module, err = e.mods.resolve(ctx, specMapper(&rec.Spec)); err != nil {
		return err
	}
	reducer, err := e.mods.resolve(ctx, specReducer(&rec.Spec))
	if err != nil {
		return err
	}
	if reducer != rec.Module {
		rec.Reducer = reducer
	}
	if rec.MapCommand, err = e.runner.IsCommand(ctx, rec.Module); err != nil {
		return err
	}
	if rec.ReduceCommand, err = e.runner.IsCommand(ctx, rec.reducer()); err != nil {
		return err
	}
	if rec.MapCommand && rec.Spec.Stream {
		return fmt.Errorf("%w: a streaming job's mapper must be a reactor module", broker.ErrInvalid)
	}
	if rec.MapCommand || rec.ReduceCommand {
		if _, err := runner.CommandParams(rec.Spec.Params); err != nil {
			return fmt.Errorf("%w: %v", broker.ErrInvalid, err)
		}
	}
	return nil
}

// split cuts every input file into map tasks.
func (in *Input) split(chunk, limit int64) ([]mapTask, error) {
	var out []mapTask
	global := uint64(0)
	for i, f := range in.files {
		ts, err := splitFile(filepath.Join(in.dir, f.Path), i, f.Size, chunk, limit, global)
		if err != nil {
			return nil, fmt.Errorf("split input %s: %w", f.Name, err)
		}
		out = append(out, ts...)
		global += uint64(f.Size)
		if len(out) > maxMapTasks {
			return nil, fmt.Errorf("%w: the input makes more than %d map tasks: raise chunk_size", broker.ErrInvalid, maxMapTasks)
		}
	}
	return out, nil
}

// drainQueue leases every message of queue and writes them, one record per
// message, as an input file. The leases are acked in the transaction that
// creates the job, so a crash before it returns the messages to the queue.
func (e *Engine) drainQueue(ctx context.Context, queue string, in *Input) ([]broker.LeaseRef, error) {
	rel := fmt.Sprintf("input-%d", len(in.files))
	f, err := os.Create(filepath.Join(in.dir, rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var refs []broker.LeaseRef
	var size int64
	for {
		ls, err := e.q.Lease(ctx, queue, 1000, 10*time.Minute)
		if errors.Is(err, broker.ErrQueuePaused) {
			return nil, fmt.Errorf("%w: input queue %s is paused", broker.ErrInvalid, queue)
		}
		if err != nil {
			return nil, err
		}
		if len(ls) == 0 {
			break
		}
		for _, l := range ls {
			refs = append(refs, broker.LeaseRef{Queue: queue, LeaseID: l.ID})
			v := l.Message.Value
			if len(v) == 0 || v[len(v)-1] != '\n' {
				v = append(v, '\n')
			}
			if size += int64(len(v)); size > e.cfg.MaxInput {
				e.releaseRefs(ctx, refs)
				return nil, fmt.Errorf("%w: queue %s holds more than %d bytes", ErrInputTooLarge, queue, e.cfg.MaxInput)
			}
			if _, err := f.Write(v); err != nil {
				e.releaseRefs(ctx, refs)
				return nil, err
			}
		}
	}
	if err := f.Sync(); err != nil {
		e.releaseRefs(ctx, refs)
		return nil, err
	}
	if size > 0 {
		in.files = append(in.files, inputFile{Name: "queue:" + queue, Path: rel, Size: size})
		in.size += size
	}
	return refs, nil
}

// releaseRefs returns leased messages to their queue.
func (e *Engine) releaseRefs(ctx context.Context, refs []broker.LeaseRef) {
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.LeaseID
	}
	if len(refs) > 0 {
		if _, err := e.q.Release(ctx, refs[0].Queue, ids); err != nil {
			e.log.Error("return drained messages", "queue", refs[0].Queue, "err", err)
		}
	}
}

// testHookSubmitted, when set by a test, runs once a submission is in the
// store, before the engine lists the job.
var testHookSubmitted func(e *Engine, id string)
