package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// advance moves a job to its next state when its phase is complete: map done
// → reduce tasks created (in the same transaction as the state change), all
// reduces done → done. It also cleans up what a finished job left behind, so
// calling it again after a crash finishes the work.
func (e *Engine) advance(ctx context.Context, j *job) error {
	if e.shared() {
		return e.advanceShared(ctx, j)
	}
	e.mu.Lock()
	rec := j.rec
	idle := len(j.running) == 0
	mapDone := j.done[PhaseMap] >= rec.MapTasks && idle
	reduceDone := j.done[PhaseReduce] >= rec.Spec.Reducers && idle
	e.mu.Unlock()
	return e.moveOn(ctx, j, rec, mapDone, reduceDone)
}

// moveOn takes a job to its next state given whether its phases are done
// (reduceDone is checked against the reduce queue here).
func (e *Engine) moveOn(ctx context.Context, j *job, rec jobRecord, mapDone, reduceDone bool) error {
	if reduceDone && rec.State == StateReducing {
		// A partition too large for one task left follow-ups in the queue.
		info, err := e.q.Stats(ctx, reduceQueue(rec.ID))
		if err != nil && !errors.Is(err, broker.ErrQueueNotFound) {
			return err
		}
		reduceDone = info.Length == 0 && info.InFlight == 0
	}
	now := time.Now().UTC()
	switch {
	case rec.State.Finished():
		return e.cleanup(ctx, j)
	case rec.Spec.Stream:
		return nil
	case (rec.State == StateQueued || rec.State == StateMapping) && mapDone:
		rec.State, rec.MapDone = StateReducing, &now
		msgs := make([]broker.NewMessage, rec.Spec.Reducers)
		for r := range msgs {
			msgs[r].Value, _ = json.Marshal(reduceTask{Partition: r})
		}
		g := broker.CommitGroup{
			Pushes:    []broker.QueuePush{{Queue: reduceQueue(rec.ID), Messages: msgs}},
			RecordSet: []broker.Record{rec.record()},
		}
		if _, err := e.commitOne(ctx, g); err != nil {
			return fmt.Errorf("job %s: start reduce: %w", rec.ID, err)
		}
		e.setRecord(j, rec)
		e.log.Info("map phase done", "job", rec.ID, "tasks", rec.MapTasks)
		e.endedElsewhere(ctx, j)
		e.kick()
	case rec.State == StateReducing && reduceDone:
		rec.State, rec.Finished = StateDone, &now
		if err := e.putRecords(ctx, rec.record()); err != nil {
			return fmt.Errorf("job %s: finish: %w", rec.ID, err)
		}
		e.setRecord(j, rec)
		e.log.Info("job done", "job", rec.ID, "records", j.records, "seconds", now.Sub(rec.Submitted).Seconds())
		if e.endedElsewhere(ctx, j) {
			return nil
		}
		return e.cleanup(ctx, j)
	}
	return nil
}

// state returns a job's state.
func (e *Engine) state(j *job) State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return j.rec.State
}

func (e *Engine) setRecord(j *job, rec jobRecord) {
	e.mu.Lock()
	j.setState(rec)
	e.mu.Unlock()
}

// end finishes a job as failed or cancelled: its record says why, workers
// are told to abort its tasks, and its queues are purged.
func (e *Engine) end(ctx context.Context, j *job, state State, why string) error {
	return e.endAs(ctx, j, state, why, false)
}

// endAs is end; again ends a job that this server saw finish (done) but
// another server ended first (shared.go: endedElsewhere).
func (e *Engine) endAs(ctx context.Context, j *job, state State, why string, again bool) error {
	if !again && e.shared() && e.lookupLocal(j.rec.ID) == j && e.finishedInStore(ctx, j) {
		return nil // it ended elsewhere meanwhile: that end stands
	}
	now := time.Now().UTC()
	e.mu.Lock()
	if j.rec.State.Finished() && (!again || j.rec.State != StateDone) {
		e.mu.Unlock()
		return nil
	}
	wasDone := j.rec.State == StateDone
	rec := j.rec
	rec.State, rec.Error, rec.Finished = state, why, &now
	j.setState(rec)
	cancels := e.dropRunningLocked(j)
	e.mu.Unlock()
	if !wasDone {
		e.trackStream(j, -1)
	}
	for _, c := range cancels {
		c.session.cancelTask(c.id)
	}
	recs := []broker.Record{rec.record()}
	if e.shared() {
		recs = append(recs, endRecordOf(rec))
	}
	if err := e.putRecords(ctx, recs...); err != nil {
		return fmt.Errorf("job %s: %s: %w", rec.ID, state, err)
	}
	e.log.Info("job ended", "job", rec.ID, "state", state, "error", why)
	return e.cleanup(ctx, j)
}

// Cancel cancels a job: workers are told to abort its tasks and its queues
// are purged.
func (e *Engine) Cancel(ctx context.Context, id string) (Status, error) {
	j := e.lookup(ctx, id)
	if j == nil {
		return Status{}, fmt.Errorf("%w: %s", ErrJobNotFound, truncate(id, 64))
	}
	if st := e.state(j); st.Finished() {
		return e.status(ctx, j), fmt.Errorf("%w: %s is %s", ErrFinished, id, st)
	}
	if err := e.end(ctx, j, StateCancelled, "cancelled"); err != nil {
		return Status{}, err
	}
	if st := e.state(j); st != StateCancelled {
		return e.status(ctx, j), fmt.Errorf("%w: %s is %s", ErrFinished, id, st) // it ended elsewhere first
	}
	return e.status(ctx, j), nil
}

// cleanup purges a finished job's work queues (and, unless it is done, its
// output) and its input files. It is idempotent.
func (e *Engine) cleanup(ctx context.Context, j *job) error {
	id, state := j.rec.ID, e.state(j)
	queues := []string{mapQueue(id), reduceQueue(id), broker.DeadQueue(mapQueue(id)), broker.DeadQueue(reduceQueue(id)), coordQueue(id)}
	for r := range j.rec.Spec.Reducers {
		queues = append(queues, partQueue(id, r))
	}
	if state != StateDone {
		queues = append(queues, outQueue(id))
	}
	for _, q := range queues {
		if err := e.q.Purge(ctx, q); err != nil {
			return fmt.Errorf("job %s: purge %s: %w", id, q, err)
		}
	}
	if state != StateDone {
		if _, err := e.q.RecordDeletePrefix(ctx, taskKeyPrefix(id)); err != nil {
			return err
		}
	}
	j.closeInputs()
	if err := e.cleanupShared(ctx, j, state); err != nil {
		return err
	}
	if state != StateDone {
		return os.RemoveAll(j.dir)
	}
	return removeAllBut(j.dir, "out") // a done job keeps its output
}

// removeAllBut removes everything in dir but the entry named keep.
func removeAllBut(dir, keep string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, en := range entries {
		if en.Name() != keep {
			if err := os.RemoveAll(filepath.Join(dir, en.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
