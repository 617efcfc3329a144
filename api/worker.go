package api

import "time"

// WorkerInfo is what the API shows of a connected worker.
type WorkerInfo struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"` // browser, native or local
	Name       string `json:"name,omitempty"`
	UserAgent  string `json:"user_agent"`
	RemoteAddr string `json:"remote_addr"`
	Slots      int    `json:"slots"`
	// Running lists the task copies the worker holds, started or queued.
	Running     []RunningTask `json:"running"`
	TasksDone   int64         `json:"tasks_done"`
	TasksFailed int64         `json:"tasks_failed"`
	BytesIn     int64         `json:"bytes_in"`
	Connected   time.Time     `json:"connected"`
	LastSeen    time.Time     `json:"last_seen"`
	// Trusted workers' results are not verified.
	Trusted  bool     `json:"trusted"`
	Standing Standing `json:"standing"`
	// Flagged workers were caught returning wrong results: disconnected,
	// refused, and listed here for the operator to see.
	Flagged bool `json:"flagged"`
	// Server is the name of the server the worker is connected to (its
	// --name), when several servers share a store.
	Server string `json:"server,omitempty"`
}

// RunningTask is a copy of a task a worker holds. Every page names it the
// same way: by Copy, the id the worker knows it by (the volunteer page
// shows #Copy), then its phase and its number in the job's phase.
type RunningTask struct {
	Copy    uint64 `json:"copy"` // the task id of the worker protocol
	Job     string `json:"job"`
	Phase   Phase  `json:"phase"`
	Task    uint64 `json:"task"` // the task's number in its job's phase
	Attempt int    `json:"attempt"`
	// Check says why a copy beyond the first runs: CheckReplica,
	// CheckProbe or CheckBackup; "" for the first.
	Check string `json:"check,omitempty"`
	// Sent is when the copy was handed out; Percent how far the worker
	// last said it was (0 while a module maps or reduces, 50 while it
	// combines, 90 while it sorts).
	Sent    time.Time `json:"sent"`
	Percent int       `json:"percent"`
}

// Why a worker runs a copy of a task beyond the first.
const (
	CheckReplica = "replica" // to check another worker's result
	CheckProbe   = "probe"   // a task whose answer is known, sent to a new worker
	CheckBackup  = "backup"  // a backup copy of a slow task
)

// Standing is a worker's record of verified results.
type Standing struct {
	Agreed      int64 `json:"agreed"`       // results that matched another worker's or the server's
	Disagreed   int64 `json:"disagreed"`    // results that did not
	SpotChecked int64 `json:"spot_checked"` // results the server re-ran itself
	Probation   bool  `json:"probation"`    // every result is still checked
	Flagged     bool  `json:"flagged"`      // caught returning a wrong result
	// Contradicted counts the worker's failures that the server's own run
	// of the task contradicted; Throttled: it holds one task at a time.
	Contradicted int64 `json:"contradicted"`
	Throttled    bool  `json:"throttled"`
}

// ModuleInfo describes a registered module.
type ModuleInfo struct {
	Name    string `json:"name,omitempty"` // built-in job name
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Builtin bool   `json:"builtin"`
}

// QueueStats is one queue's line of GET /stats.
type QueueStats struct {
	Name         string    `json:"name"`
	Length       int64     `json:"length"`
	InFlight     int64     `json:"in_flight"`
	Status       string    `json:"status"`
	Policy       string    `json:"policy"`
	LastID       uint64    `json:"last_id"`
	Pushed       int64     `json:"pushed"`
	Delivered    int64     `json:"delivered"`
	Acked        int64     `json:"acked"`
	DeadLettered int64     `json:"dead_lettered"`
	Created      time.Time `json:"created"`
	Dead         int64     `json:"dead"`
	Consumers    int       `json:"consumers"`
}
