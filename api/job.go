package api

import (
	"encoding/json"
	"time"
)

// State is where a job is in its life.
type State string

// Job states. A job moves queued → mapping → reducing → done, or ends failed
// or cancelled; a streaming job stays mapping until cancelled.
const (
	StateQueued    State = "queued"
	StateMapping   State = "mapping"
	StateReducing  State = "reducing"
	StateDone      State = "done"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// Finished reports whether the state is final.
func (s State) Finished() bool {
	return s == StateDone || s == StateFailed || s == StateCancelled
}

// Known reports whether s is one of the states.
func (s State) Known() bool {
	switch s {
	case StateQueued, StateMapping, StateReducing, StateDone, StateFailed, StateCancelled:
		return true
	}
	return false
}

// Phase is map or reduce.
type Phase string

// Phases.
const (
	PhaseMap    Phase = "map"
	PhaseReduce Phase = "reduce"
)

// Spec is what a submitter asks for. Zero fields take the defaults.
type Spec struct {
	// Module is a built-in job's name or a registered module's sha256: the
	// job's mapper and reducer, unless Mapper or Reducer names another.
	Module string `json:"module,omitempty"`
	// Mapper and Reducer, as Hadoop Streaming names them, run the two
	// phases with different modules: a reactor (the ABI's exports) or a
	// WASI command (wasm/ABI.md "Command modules"), each a built-in name or
	// a sha256. A command's arguments and environment come from Params:
	// {"args": [...], "env": ["NAME=value"]}.
	Mapper  string `json:"mapper,omitempty"`
	Reducer string `json:"reducer,omitempty"`
	// Params is the JSON handed to the module (e.g. grep's pattern).
	Params json.RawMessage `json:"params,omitempty"`
	// ChunkSize is the map input per task in bytes, cut at newlines (1 MiB).
	ChunkSize int64 `json:"chunk_size,omitempty"`
	// Reducers is R, the number of reduce partitions (4).
	Reducers int `json:"reducers,omitempty"`
	// MaxAttempts is how many times a task may fail before the job fails (4).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// TaskTimeout bounds one task on a worker, in seconds (60).
	TaskTimeout float64 `json:"task_timeout,omitempty"`
	// InputQueue names a broker queue whose messages are the input: drained
	// at submission (one record per message), or, for a streaming job,
	// consumed as they arrive.
	InputQueue string `json:"input_queue,omitempty"`
	// OutputQueue names an ordinary queue that receives every final record
	// as it is committed, one message each: {"key": ..., "value": ...} (see
	// PairJSON). The job's own output is kept apart, whatever consumers do
	// to this queue.
	OutputQueue string `json:"output_queue,omitempty"`
	// Stream makes a streaming job: every message on InputQueue is mapped and
	// the map output pushed to OutputQueue, until cancelled.
	Stream bool `json:"stream,omitempty"`
	// Verify is how results of untrusted workers are checked: none,
	// replicate, adaptive (the default) or spotcheck. Trusted workers (the
	// operator's token, or in-process) are never checked.
	Verify Verify `json:"verify,omitempty"`
}

// Defaults for Spec.
const (
	DefaultChunkSize   = 1 << 20
	DefaultReducers    = 4
	DefaultMaxAttempts = 4
	DefaultTaskTimeout = 60 * time.Second
)

// PhaseCounts counts a phase's tasks.
type PhaseCounts struct {
	Total   int `json:"total"`
	Pending int `json:"pending"`
	Running int `json:"running"`
	Done    int `json:"done"`
	Failed  int `json:"failed"` // failed attempts (a task may fail and then succeed)
	// MeanSeconds is a running mean of the compute time workers report
	// for the phase's last hundred or so tasks, since the server started
	// (0 before the first): what a running task's progress is judged by.
	MeanSeconds float64 `json:"mean_seconds,omitempty"`
}

// Status is what the API shows of a job.
type Status struct {
	ID        string `json:"id"`
	State     State  `json:"state"`
	Spec      Spec   `json:"spec"`
	ModuleSHA string `json:"module_sha256"`
	// ModuleName is the module's name: a built-in's, or the file name it
	// was uploaded under ("" if none was given).
	ModuleName string `json:"module_name,omitempty"`
	// ReducerSHA is the reduce phase's module when it is not ModuleSHA.
	ReducerSHA string                `json:"reducer_sha256,omitempty"`
	Phases     map[Phase]PhaseCounts `json:"phases"`
	BytesIn    int64                 `json:"bytes_in"`
	BytesOut   int64                 `json:"bytes_out"`
	Records    int64                 `json:"records_out"`
	Counters   map[string]int64      `json:"counters"`
	Error      string                `json:"error,omitempty"`
	// Times: submitted, started (first task handed out), map done, finished.
	Submitted time.Time  `json:"submitted"`
	Started   *time.Time `json:"started,omitempty"`
	MapDone   *time.Time `json:"map_done,omitempty"`
	Finished  *time.Time `json:"finished,omitempty"`
	// OutputQueue is the spec's output queue, if any.
	OutputQueue string `json:"output_queue,omitempty"`
	// BackupCopies counts the copies of slow tasks sent to idle workers
	// near the end of a phase (the first result wins).
	BackupCopies int64 `json:"backup_copies"`
	// SpilledRuns counts map runs kept in files rather than in the store.
	SpilledRuns int64 `json:"spilled_runs"`
	// Verification counts the extra work spent checking results.
	Verification VerifyCounts `json:"verification"`
	// Coordinator is the server that moves the job from phase to phase
	// (the holder of its coordination lease), when several servers share a
	// store; empty while none holds it.
	Coordinator string `json:"coordinator,omitempty"`
}

// Verify is a job's verification mode.
type Verify string

// Verification modes.
const (
	// VerifyNone trusts every result.
	VerifyNone Verify = "none"
	// VerifyReplicate runs every task on two distinct workers, and a third
	// when they disagree; the majority wins.
	VerifyReplicate Verify = "replicate"
	// VerifyAdaptive replicates a worker's results until it has a track
	// record, then only a random sample (BOINC's adaptive replication).
	VerifyAdaptive Verify = "adaptive"
	// VerifySpotcheck has the server re-run a sample of tasks itself.
	VerifySpotcheck Verify = "spotcheck"
)

// ParseVerify validates a mode; "" is the default, adaptive.
func ParseVerify(s string) (Verify, error) {
	switch v := Verify(s); v {
	case "":
		return VerifyAdaptive, nil
	case VerifyNone, VerifyReplicate, VerifyAdaptive, VerifySpotcheck:
		return v, nil
	}
	return "", Errorf(CodeInvalid, "verify %q must be none, replicate, adaptive or spotcheck", clip(s, 32))
}

// VerifyCounts is a job's verification work.
type VerifyCounts struct {
	Replicas   int64 `json:"replicas"`    // extra copies run on workers to check a result
	Probes     int64 `json:"probes"`      // known-answer tasks sent to new workers
	SpotChecks int64 `json:"spot_checks"` // tasks the server re-ran itself
	Mismatches int64 `json:"mismatches"`  // results found wrong
	Reruns     int64 `json:"reruns"`      // committed results undone because their worker was caught
	// SameNetwork counts results accepted on the agreement of workers of
	// one network (distinct sessions): weaker evidence than distinct
	// networks, taken only where no other network's worker could run the
	// replica (or the server allows it).
	SameNetwork int64 `json:"same_network"`
	// Audits counts results agreed by untrusted workers that the server
	// re-ran to check the agreement (adaptive); FailureChecks counts
	// failures reported by untrusted workers that the server re-ran before
	// they counted.
	Audits        int64 `json:"audits"`
	FailureChecks int64 `json:"failure_checks"`
}

// Totals are the engine's throughput counters since it started.
type Totals struct {
	TasksDone int64 `json:"tasks_done"`
	BytesDone int64 `json:"bytes_done"` // input bytes of the committed tasks
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
