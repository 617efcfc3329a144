package engine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Records and queues of a job, all in the store's internal namespace: job
// records under "job/" and task records under "jobtask/" in the record
// space (so a scan of one never returns the other), and task queues whose
// names hold '/', which no public name can.
const (
	jobPrefix  = "job/"
	taskPrefix = "jobtask/"
)

func jobKey(id string) string        { return jobPrefix + id }
func taskKeyPrefix(id string) string { return taskPrefix + id + "/" }
func taskKey(id string, p Phase, n uint64) string {
	return taskKeyPrefix(id) + string(p) + "/" + strconv.FormatUint(n, 10)
}
func jobQueuePrefix(id string) string   { return "job/" + id + "/" }
func mapQueue(id string) string         { return jobQueuePrefix(id) + "map" }
func reduceQueue(id string) string      { return jobQueuePrefix(id) + "reduce" }
func partQueue(id string, r int) string { return jobQueuePrefix(id) + "part/" + strconv.Itoa(r) }
func outQueue(id string) string         { return jobQueuePrefix(id) + "out" }

// jobRecord is a job as stored: what it takes to resume it after a restart.
type jobRecord struct {
	ID     string `json:"id"`
	Spec   Spec   `json:"spec"`
	Module string `json:"module"` // sha256 of the mapper (and reducer)
	// Reducer is the sha256 of the reduce phase's module when it is not
	// Module (Spec.Reducer).
	Reducer string `json:"reducer,omitempty"`
	// MapCommand and ReduceCommand say which phases run command modules:
	// their tasks carry the command's arguments and environment as their
	// parameters instead of the spec's JSON.
	MapCommand    bool        `json:"map_command,omitempty"`
	ReduceCommand bool        `json:"reduce_command,omitempty"`
	State         State       `json:"state"`
	Error         string      `json:"error,omitempty"`
	Files         []inputFile `json:"files,omitempty"`
	MapTasks      int         `json:"map_tasks"`
	BytesIn       int64       `json:"bytes_in"`

	Submitted time.Time  `json:"submitted"`
	Started   *time.Time `json:"started,omitempty"`
	MapDone   *time.Time `json:"map_done,omitempty"`
	Finished  *time.Time `json:"finished,omitempty"`
}

// reducer is the sha256 of the reduce phase's module.
func (r *jobRecord) reducer() string { return cmp.Or(r.Reducer, r.Module) }

func (r *jobRecord) record() broker.Record {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("job record %s: %v", r.ID, err)) // only plain types: cannot fail
	}
	return broker.Record{Key: jobKey(r.ID), Value: b}
}

// taskRecord is one committed task's result summary.
type taskRecord struct {
	Counters map[string]int64 `json:"counters,omitempty"`
	BytesIn  int64            `json:"in"`
	BytesOut int64            `json:"out"`
	Records  int64            `json:"records"`
	Micros   int64            `json:"us"`
	Worker   string           `json:"worker"`
}

func (t *taskRecord) record(job string, p Phase, n uint64) broker.Record {
	b, _ := json.Marshal(t)
	return broker.Record{Key: taskKey(job, p, n), Value: b}
}

// mapTask is a map task's message: where its chunk is in the input files.
type mapTask struct {
	File   int    `json:"f"`
	Offset int64  `json:"o"` // within the file
	Length int64  `json:"n"`
	Global uint64 `json:"g"` // offset within the whole input
}

// reduceTask is a reduce task's message: a partition, or the part of it
// with keys above After when the partition was too large for one task.
type reduceTask struct {
	Partition int    `json:"p"`
	After     []byte `json:"after,omitempty"`
}
