package engine

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
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

// decodeMapTask decodes a map task's message and checks it against the
// job's input files: a chunk that lies outside them, or that is larger than
// a task may carry, is refused before anything is read or allocated.
func decodeMapTask(msg []byte, files []inputFile, limit int) (mapTask, error) {
	mt, ok := parseMapTask(msg)
	if !ok {
		if err := decodeStrict(msg, &mt); err != nil {
			return mt, fmt.Errorf("map task message: %w", err)
		}
	}
	if mt.File < 0 || mt.File >= len(files) {
		return mt, fmt.Errorf("map task names input file %d of %d", mt.File, len(files))
	}
	f := files[mt.File]
	global := uint64(0)
	for _, prev := range files[:mt.File] {
		global += uint64(prev.Size)
	}
	switch {
	case mt.Offset < 0 || mt.Length <= 0 || mt.Offset > f.Size || mt.Length > f.Size-mt.Offset:
		return mt, fmt.Errorf("map task chunk %d+%d lies outside input file %d (%d bytes)", mt.Offset, mt.Length, mt.File, f.Size)
	case mt.Length > int64(limit):
		return mt, fmt.Errorf("map task chunk of %d bytes is larger than a task may carry (%d)", mt.Length, limit)
	case mt.Global != global+uint64(mt.Offset):
		return mt, fmt.Errorf("map task says its chunk is at %d of the input, it is at %d", mt.Global, global+uint64(mt.Offset))
	}
	return mt, nil
}

// parseMapTask reads a map task's message in the one form the engine
// writes (encoding/json's of mapTask: {"f":F,"o":O,"n":N,"g":G}, plain
// decimals), without a decoder's reflection and allocations, as
// decodeStrict would; ok is false for any other form, which decodeStrict
// then reads (or refuses).
func parseMapTask(msg []byte) (mt mapTask, ok bool) {
	var f, o, n, g uint64
	ok1, ok2, ok3, ok4 := false, false, false, false
	msg, f, ok1 = jsonField(msg, `{"f":`, 9)
	msg, o, ok2 = jsonField(msg, `,"o":`, 18)
	msg, n, ok3 = jsonField(msg, `,"n":`, 18)
	msg, g, ok4 = jsonField(msg, `,"g":`, 19)
	if !ok1 || !ok2 || !ok3 || !ok4 || string(msg) != "}" {
		return mapTask{}, false
	}
	return mapTask{File: int(f), Offset: int64(o), Length: int64(n), Global: g}, true
}

// jsonField reads prefix, then a decimal of at most digits digits with no
// leading zero, from b, and returns what follows.
func jsonField(b []byte, prefix string, digits int) ([]byte, uint64, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, 0, false
	}
	b = b[len(prefix):]
	var v uint64
	i := 0
	for i < len(b) && i <= digits && b[i] >= '0' && b[i] <= '9' {
		v = v*10 + uint64(b[i]-'0')
		i++
	}
	if i == 0 || i > digits || i > 1 && b[0] == '0' {
		return b, 0, false
	}
	return b[i:], v, true
}

// reduceTask is a reduce task's message: a partition, or the rest of one
// when it was too large for one task: the keys above After, from where
// Cursor says each run still holds pairs (runs it leaves out are done).
type reduceTask struct {
	Partition int         `json:"p"`
	After     []byte      `json:"after,omitempty"`
	Cursor    []runCursor `json:"cursor,omitempty"`
}

// runCursor is where a follow-up reduce task starts in one run: the run's
// message id in the partition queue, and a byte offset in its stream.
type runCursor struct {
	Run    uint64 `json:"r"`
	Offset int64  `json:"o"`
}

// maxCursorRuns bounds the runs a cursor names: no partition has more runs
// than the job has map tasks.
const maxCursorRuns = maxMapTasks

// decodeReduceTask decodes a reduce task's message and checks it.
func decodeReduceTask(msg []byte, reducers int) (reduceTask, error) {
	var rt reduceTask
	if err := decodeStrict(msg, &rt); err != nil {
		return rt, fmt.Errorf("reduce task message: %w", err)
	}
	switch {
	case rt.Partition < 0 || rt.Partition >= reducers:
		return rt, fmt.Errorf("reduce task names partition %d of %d", rt.Partition, reducers)
	case len(rt.Cursor) > maxCursorRuns:
		return rt, fmt.Errorf("reduce task cursor names %d runs", len(rt.Cursor))
	}
	for _, c := range rt.Cursor {
		if c.Offset < 0 || c.Run == 0 {
			return rt, fmt.Errorf("reduce task cursor (%d, %d) is not one the engine writes", c.Run, c.Offset)
		}
	}
	return rt, nil
}

// decodeStrict decodes one JSON object with no unknown fields and nothing
// after it.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
