package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/tabreduce/tabreduce/server/broker"
)

// What is read back from the store at start is checked before it is used:
// a record is engine state, but a file can be damaged or written by another
// version. A record that does not decode, or holds what this engine would
// never have written, is set aside (moved under setAsidePrefix, logged and
// reported), and the server starts without it.

// setAsidePrefix is where records that did not load are kept, for the
// operator to look at.
const setAsidePrefix = "setaside/"

// Bounds of what a job record may hold.
const (
	maxInputFiles = 100_000
	maxMapTasks   = 1 << 20
	maxFileName   = 4096
)

var (
	jobIDRE     = regexp.MustCompile(`^[0-9a-z]{1,32}$`)
	inputPathRE = regexp.MustCompile(`^input-[0-9]{1,6}$`)
)

// SetAside is a record that did not load at start.
type SetAside struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// SetAside lists the records that did not load when the engine started.
func (e *Engine) SetAside() []SetAside {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]SetAside(nil), e.setAside...)
}

// recover loads every job record and resumes unfinished jobs: leases held
// before the restart were recovered by the broker, so their tasks are
// simply pending again; committed tasks keep their results.
func (e *Engine) recover(ctx context.Context) error {
	err := e.scanRecords(ctx, jobPrefix, func(r broker.Record) error {
		rec, err := decodeJobRecord(r)
		if err != nil {
			return e.putAside(ctx, r, err)
		}
		j := e.jobOf(rec)
		if err := e.loadTaskRecords(ctx, j); err != nil {
			return err
		}
		// A job that ended before this start has its final sums in hand.
		j.sumsFinal = rec.State.Finished()
		e.jobs[rec.ID] = j
		if !rec.State.Finished() {
			e.log.Info("resuming job", "job", rec.ID, "state", rec.State,
				"map_done", j.done[PhaseMap], "reduce_done", j.done[PhaseReduce])
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, j := range e.jobs {
		if !j.rec.State.Finished() && !j.rec.Spec.Stream {
			if err := j.checkInputs(); err != nil {
				e.log.Error("job input damaged", "job", j.rec.ID, "err", err)
				if err := e.end(ctx, j, StateFailed, "input damaged: "+err.Error()); err != nil {
					return err
				}
				continue
			}
		}
		e.trackStream(j, +1)
		if err := e.advance(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

// putAside moves a record that did not load under setAsidePrefix.
func (e *Engine) putAside(ctx context.Context, r broker.Record, why error) error {
	e.log.Error("record set aside: it did not load", "key", r.Key, "err", why)
	_, err := e.commitOne(ctx, broker.CommitGroup{
		RecordSet:    []broker.Record{{Key: setAsidePrefix + r.Key, Value: r.Value}},
		RecordDelete: []string{r.Key},
	})
	if err != nil {
		return fmt.Errorf("set aside %s: %w", r.Key, err)
	}
	e.setAside = append(e.setAside, SetAside{Key: r.Key, Error: why.Error()})
	return nil
}

// decodeJobRecord decodes and checks a job record.
func decodeJobRecord(r broker.Record) (jobRecord, error) {
	var rec jobRecord
	if err := json.Unmarshal(r.Value, &rec); err != nil {
		return rec, err
	}
	id := strings.TrimPrefix(r.Key, jobPrefix)
	switch {
	case !jobIDRE.MatchString(id):
		return rec, fmt.Errorf("job id %q is not one the engine makes", truncate(id, 40))
	case rec.ID != id:
		return rec, fmt.Errorf("the record of job %s says it is %q", id, truncate(rec.ID, 40))
	case !rec.State.Known():
		return rec, fmt.Errorf("unknown state %q", truncate(string(rec.State), 20))
	case !shaRE.MatchString(rec.Module):
		return rec, fmt.Errorf("module %q is not a sha256", truncate(rec.Module, 70))
	case rec.Reducer != "" && !shaRE.MatchString(rec.Reducer):
		return rec, fmt.Errorf("reducer %q is not a sha256", truncate(rec.Reducer, 70))
	case rec.MapTasks < 0 || rec.MapTasks > maxMapTasks:
		return rec, fmt.Errorf("%d map tasks", rec.MapTasks)
	case rec.Submitted.IsZero():
		return rec, errors.New("no submission time")
	case len(rec.Files) > maxInputFiles:
		return rec, fmt.Errorf("%d input files", len(rec.Files))
	}
	spec := rec.Spec
	if err := normalizeSpec(&spec); err != nil {
		return rec, fmt.Errorf("spec: %w", err)
	}
	rec.Spec = spec
	var total int64
	for i, f := range rec.Files {
		if !inputPathRE.MatchString(f.Path) || f.Size < 0 || len(f.Name) > maxFileName {
			return rec, fmt.Errorf("input file %d (%q, %d bytes) is not one the engine writes", i, truncate(f.Path, 40), f.Size)
		}
		total += f.Size
	}
	if total != rec.BytesIn {
		return rec, fmt.Errorf("input files hold %d bytes, the record says %d", total, rec.BytesIn)
	}
	return rec, nil
}

// checkInputs makes sure a job's input files are there, at their sizes.
func (j *job) checkInputs() error {
	if j.shared != nil {
		return j.checkSharedInputs()
	}
	for _, f := range j.rec.Files {
		fi, err := os.Stat(filepath.Join(j.dir, f.Path))
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return fmt.Errorf("%s is %d bytes, want %d", f.Path, fi.Size(), f.Size)
		}
	}
	return nil
}

// loadTaskRecords sums a job's committed task records; one that does not
// decode is set aside (its task then runs again).
func (e *Engine) loadTaskRecords(ctx context.Context, j *job) error {
	prefix := taskKeyPrefix(j.rec.ID)
	return e.scanRecords(ctx, prefix, func(r broker.Record) error {
		p, err := parseTaskKey(strings.TrimPrefix(r.Key, prefix))
		var tr taskRecord
		if err == nil {
			err = json.Unmarshal(r.Value, &tr)
		}
		if err == nil && (tr.BytesIn < 0 || tr.BytesOut < 0 || tr.Records < 0) {
			err = errors.New("negative sizes")
		}
		if err != nil {
			return e.putAside(ctx, r, err)
		}
		j.addResult(p, &tr)
		return nil
	})
}

// parseTaskKey reads "{phase}/{n}", the tail of a task record's key.
func parseTaskKey(s string) (Phase, error) {
	p, n, ok := strings.Cut(s, "/")
	if _, err := strconv.ParseUint(n, 10, 64); !ok || err != nil || (p != string(PhaseMap) && p != string(PhaseReduce)) {
		return "", fmt.Errorf("task record %q", truncate(s, 40))
	}
	return Phase(p), nil
}
