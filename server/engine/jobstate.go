package engine

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabreduce/tabreduce/server/blob"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

// job is a job as the running engine holds it: its record plus what is in
// flight and the sums of its committed tasks.
type job struct {
	rec      jobRecord
	dir      string
	timeout  time.Duration
	running  map[string]*task // lease id → task being run
	done     map[Phase]int
	failed   map[Phase]int
	counters map[string]int64
	bytesOut int64
	records  int64
	avgTask  map[Phase]time.Duration // running mean of task durations

	filesMu sync.Mutex
	open    []*os.File // input files, opened on first read

	backups int64        // backup copies of slow tasks sent (Engine.mu)
	spilled atomic.Int64 // map runs kept in files

	// mapParams and reduceParams are the parameters the phases' tasks
	// carry: the spec's JSON, or a command's encoded arguments.
	mapParams, reduceParams []byte

	// Verification (Engine.mu).
	verify Verify
	counts VerifyCounts
	known  []knownAnswer

	// When servers share the store (shared.go): the blob store its input
	// and spilled runs are in, the coordination lease while this server
	// holds it, the coordinator's name as last read, and the sums of every
	// server's committed tasks as last read, with the queue figures they
	// were read at, when, and whether after the job ended (Engine.mu);
	// sumsMu is held by the one reading them.
	shared    blob.Store
	coord     *broker.Lease
	coordName string
	stored    *taskSums
	storedAt  [4]int64
	sumsRead  time.Time
	sumsFinal bool
	sumsMu    sync.Mutex
	windowsMu sync.Mutex
	windows   []window // the input last read, newest first
	ahead     reserve  // tasks leased ahead for this server's workers (Engine.mu)
}

func newJob(rec jobRecord, dir string) *job {
	timeout := DefaultTaskTimeout
	if rec.Spec.TaskTimeout > 0 {
		timeout = time.Duration(rec.Spec.TaskTimeout * float64(time.Second))
	}
	verify, err := ParseVerify(string(rec.Spec.Verify))
	if err != nil {
		verify = VerifyAdaptive
	}
	return &job{
		rec: rec, dir: dir, timeout: timeout, verify: verify,
		mapParams: taskParams(rec.Spec.Params, rec.MapCommand), reduceParams: taskParams(rec.Spec.Params, rec.ReduceCommand),
		running: map[string]*task{}, done: map[Phase]int{}, failed: map[Phase]int{},
		counters: map[string]int64{}, avgTask: map[Phase]time.Duration{},
	}
}

// taskParams is what a phase's tasks carry as parameters. A command's were
// checked at submission; a record whose parameters no longer pass gives
// the command none, and its tasks fail on what they lack.
func taskParams(params []byte, command bool) []byte {
	if !command {
		return params
	}
	enc, err := runner.CommandParams(params)
	if err != nil {
		return nil
	}
	return enc
}

// total is the number of tasks of a phase (0 when not known yet).
func (j *job) total(p Phase) int {
	switch {
	case j.rec.Spec.Stream && p == PhaseMap:
		return j.done[p] + len(j.running)
	case p == PhaseMap:
		return j.rec.MapTasks
	case j.rec.State == StateQueued || j.rec.State == StateMapping:
		return 0
	}
	// Follow-ups of partitions too large for one task add to R.
	return max(j.rec.Spec.Reducers, j.done[PhaseReduce]+len(j.running))
}

// setState copies the mutable fields of rec (state, error, times) into the
// job's record. The rest of a record never changes after submission, so it
// may be read without the lock; these fields are read and written under
// Engine.mu.
func (j *job) setState(rec jobRecord) {
	j.rec.State, j.rec.Error = rec.State, rec.Error
	j.rec.Started, j.rec.MapDone, j.rec.Finished = rec.Started, rec.MapDone, rec.Finished
	if rec.State.Finished() {
		j.known = nil // a finished job's inputs need not stay in memory
	}
}

// partitions is R as workers see it: a streaming job's map output is one
// stream, pushed to its output queue.
func (j *job) partitions() int {
	if j.rec.Spec.Stream {
		return 1
	}
	return j.rec.Spec.Reducers
}

// phase is the phase whose tasks the job hands out now. Engine.mu held.
func (j *job) phase() Phase {
	if j.rec.State == StateReducing {
		return PhaseReduce
	}
	return PhaseMap
}

// queue is where the phase's tasks wait.
func (j *job) queue(p Phase) string {
	switch {
	case j.rec.Spec.Stream:
		return j.rec.Spec.InputQueue
	case p == PhaseReduce:
		return reduceQueue(j.rec.ID)
	}
	return mapQueue(j.rec.ID)
}

// addResult counts one committed task.
func (j *job) addResult(p Phase, tr *taskRecord) {
	j.done[p]++
	for k, v := range tr.Counters {
		j.counters[k] += v
	}
	if p == PhaseReduce || j.rec.Spec.Stream {
		j.bytesOut += tr.BytesOut
		j.records += tr.Records
	}
	d := time.Duration(tr.Micros) * time.Microsecond
	if n := j.done[p]; n == 1 {
		j.avgTask[p] = d
	} else {
		j.avgTask[p] += (d - j.avgTask[p]) / time.Duration(min(n, 100))
	}
}
