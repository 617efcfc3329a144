package engine

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// A finished job stays, with its output, until it is deleted (DELETE on a
// finished job, `tabreduce rm`) or its retention passes (Config.JobRetention,
// swept by the retention service): then its record, its task records, every
// queue it had, and its files and output go.

// DefaultJobRetention is how long a finished job is kept by default.
const DefaultJobRetention = 7 * 24 * time.Hour

// Delete removes a finished job whole: its records, queues, files and
// output. It is gone from the listing at once; a crash while its parts go
// leaves its record, so the next start (or the next Delete) finishes the
// work.
func (e *Engine) Delete(ctx context.Context, id string) error {
	e.lookup(ctx, id)
	e.mu.Lock()
	j := e.jobs[id]
	switch {
	case j == nil:
		e.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrJobNotFound, truncate(id, 64))
	case !j.rec.State.Finished():
		e.mu.Unlock()
		return fmt.Errorf("%w: %s is %s", ErrNotFinished, id, j.rec.State)
	}
	delete(e.jobs, id)
	e.mu.Unlock()
	if err := e.deleteJob(ctx, j); err != nil {
		e.mu.Lock()
		if e.jobs[id] == nil {
			e.jobs[id] = j // listed again, so that it can be deleted again
		}
		e.mu.Unlock()
		return err
	}
	e.log.Info("job deleted", "job", id)
	return nil
}

// deleteJob removes a job's parts, its record last.
func (e *Engine) deleteJob(ctx context.Context, j *job) error {
	id := j.rec.ID
	queues := []string{mapQueue(id), reduceQueue(id), outQueue(id),
		broker.DeadQueue(mapQueue(id)), broker.DeadQueue(reduceQueue(id)), broker.DeadQueue(outQueue(id)), coordQueue(id)}
	for r := range j.rec.Spec.Reducers {
		queues = append(queues, partQueue(id, r), broker.DeadQueue(partQueue(id, r)))
	}
	for _, q := range queues {
		if err := e.q.Purge(ctx, q); err != nil {
			return fmt.Errorf("delete job %s: purge %s: %w", id, q, err)
		}
	}
	if _, err := e.q.RecordDeletePrefix(ctx, taskKeyPrefix(id)); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	j.closeInputs()
	if err := os.RemoveAll(j.dir); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	if j.shared != nil {
		if _, err := j.shared.DeletePrefix(ctx, jobBlobPrefix(id)); err != nil {
			return fmt.Errorf("delete job %s: %w", id, err)
		}
	}
	_, err := e.commitOne(ctx, broker.CommitGroup{RecordDelete: []string{endKey(id), jobKey(id)}})
	return err
}

// retentionLoop deletes finished jobs whose retention has passed, every
// sweep, until stopped.
func (e *Engine) retentionLoop(ctx context.Context) {
	every(ctx, e.retentionSweep(), func(now time.Time) { e.sweepJobs(ctx, now) })
}

// retentionSweep is how often the retention service looks: a tenth of the
// retention, from a tenth of a second to an hour.
func (e *Engine) retentionSweep() time.Duration {
	return min(max(e.cfg.JobRetention/10, 100*time.Millisecond), time.Hour)
}

// sweepJobs deletes the jobs that finished more than the retention before
// now.
func (e *Engine) sweepJobs(ctx context.Context, now time.Time) {
	var old []string
	e.mu.Lock()
	for id, j := range e.jobs {
		if j.rec.State.Finished() && j.rec.Finished != nil && now.Sub(*j.rec.Finished) > e.cfg.JobRetention {
			old = append(old, id)
		}
	}
	e.mu.Unlock()
	for _, id := range old {
		if err := e.Delete(ctx, id); err != nil && ctx.Err() == nil {
			e.log.Error("delete a job past its retention", "job", id, "err", err)
		}
	}
}
