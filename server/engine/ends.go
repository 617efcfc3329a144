package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// A job's end (cancelled or failed) may be decided on any server of a
// service, while the coordinator, on another, moves the job on from phase
// to phase: the two write the job's record, and the store cannot make one
// write wait for the other. So an end also leaves a record of its own,
// jobend/ID, which nothing but deleting the job removes: the coordinator
// looks at it after each move (and a server that takes the coordination
// when it does), and a job moved on over an end is ended again, as the end
// said. Before it ends a job, a server reads the job's record: a job that
// finished elsewhere meanwhile keeps that finish.
//
// What remains open: a cancel that reads the record just before the
// coordinator writes "done", and writes just after it looked, ends a done
// job as cancelled on the cancelling server (and in the store), while the
// coordinator goes on showing it done until it restarts.

const endPrefix = "jobend/"

func endKey(id string) string { return endPrefix + id }

// endRecord is a job's end as its end record keeps it.
type endRecord struct {
	State    State     `json:"state"`
	Error    string    `json:"error"`
	Finished time.Time `json:"finished"`
}

func endRecordOf(rec jobRecord) broker.Record {
	b, _ := json.Marshal(endRecord{State: rec.State, Error: rec.Error, Finished: *rec.Finished})
	return broker.Record{Key: endKey(rec.ID), Value: b}
}

// endedElsewhere ends j again if its end record says another server ended
// it: the coordinator moved it on over that end. It reports whether it did.
func (e *Engine) endedElsewhere(ctx context.Context, j *job) bool {
	if !e.shared() {
		return false
	}
	b, err := e.q.RecordGet(ctx, endKey(j.rec.ID))
	if err != nil {
		return false
	}
	var er endRecord
	if json.Unmarshal(b, &er) != nil || (er.State != StateCancelled && er.State != StateFailed) {
		e.log.Warn("a job's end record does not load; ignored", "job", j.rec.ID)
		return false
	}
	e.log.Warn("job was ended on another server as it moved on: ending it here too", "job", j.rec.ID, "state", er.State)
	if err := e.endAs(ctx, j, er.State, er.Error, true); err != nil && ctx.Err() == nil {
		e.log.Error("end a job ended elsewhere", "job", j.rec.ID, "err", err)
	}
	return true
}

// finishedInStore reports whether j's record in the store says it finished
// (another server ended it, or its coordinator finished it, and this
// server has not seen it yet); if so this server takes that record.
func (e *Engine) finishedInStore(ctx context.Context, j *job) bool {
	b, err := e.q.RecordGet(ctx, jobKey(j.rec.ID))
	if err != nil {
		return false
	}
	rec, err := decodeJobRecord(broker.Record{Key: jobKey(j.rec.ID), Value: b})
	if err != nil || !rec.State.Finished() {
		return false
	}
	e.adopt(ctx, rec)
	return true
}
