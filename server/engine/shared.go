package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/server/blob"
	"github.com/tabreduce/tabreduce/server/broker"
)

// Several servers on one store (Config.Shared set) are one service:
//
//   - Every server knows every job. It reads the job records at start, when
//     the store's events name a job's queue, and once a second (the
//     sharer), so a job submitted, cancelled or moved on anywhere is seen
//     everywhere.
//   - Every server runs any job's tasks on its own workers and commits their
//     results as it does alone: each with the ack of its task's lease, in
//     one store transaction, so a result is committed once whoever ran it.
//     A task's input is read from the shared blob store, and a run too
//     large for the store's messages is spilled there.
//   - One server at a time coordinates a job: the holder of the lease of the
//     one message in the job's coordination queue (job/ID/coord, pushed
//     with the job). Only it moves the job from phase to phase (and marks
//     it started), from counts it reads in the store: the phase's queue
//     empty with nothing leased, and the task records, which every server
//     writes with its commits. It renews the lease every second; when the
//     server dies, the lease lapses after coordLease and the next server
//     to look takes it. Cancelling and failing a job may happen anywhere.
//   - Workers and bans are shared: each server writes the list of its
//     workers as a record (workers/NAME) every second with a deadline, and
//     a flagged worker's ban as a record (ban/HASH) that every server
//     checks when a worker says hello.

// Timings of the sharer.
const (
	coordLease   = 5 * time.Second // a coordinator's lease; it lapses this long after its server died
	syncInterval = time.Second     // the sharer's round
	workersTTL   = 10 * time.Second
	staleRecords = time.Minute // a dead server's workers record is deleted this long after its deadline
)

// Record prefixes of what servers share.
const (
	workersPrefix = "workers/"
	banPrefix     = "ban/"
	coordPrefix   = "jobcoord/"
)

func coordQueue(id string) string      { return jobQueuePrefix(id) + "coord" }
func jobBlobPrefix(id string) string   { return "jobs/" + id + "/" }
func inputBlob(id, path string) string { return jobBlobPrefix(id) + path }
func runBlob(j *job, name string) string {
	if name[0] == 'o' {
		return jobBlobPrefix(j.rec.ID) + "out/" + name
	}
	return jobBlobPrefix(j.rec.ID) + "runs/" + name
}

// shared reports whether this server shares its store with others.
func (e *Engine) shared() bool { return e.cfg.Shared != nil }

// jobOf is the running form of a job record.
func (e *Engine) jobOf(rec jobRecord) *job {
	j := newJob(rec, filepath.Join(e.cfg.DataDir, "jobs", rec.ID))
	j.shared = e.cfg.Shared
	return j
}

// lookup returns a job by id; when servers share the store, a job this
// server has not seen yet is read from it.
func (e *Engine) lookup(ctx context.Context, id string) *job {
	e.mu.Lock()
	j := e.jobs[id]
	e.mu.Unlock()
	if j == nil && e.shared() && jobIDRE.MatchString(id) {
		j = e.loadShared(ctx, id)
	}
	return j
}

// loadShared reads one job's record from the store and adopts it.
func (e *Engine) loadShared(ctx context.Context, id string) *job {
	b, err := e.q.RecordGet(ctx, jobKey(id))
	if err != nil {
		return nil
	}
	rec, err := decodeJobRecord(broker.Record{Key: jobKey(id), Value: b})
	if err != nil {
		e.log.Warn("shared job record does not load", "job", id, "err", err)
		return nil
	}
	return e.adopt(ctx, rec)
}

// adopt makes the engine's view of a job the record's: a new job is added
// (and the dispatcher woken for its tasks), a known one takes the record's
// state; a job that ended elsewhere stops here too.
func (e *Engine) adopt(ctx context.Context, rec jobRecord) *job {
	e.mu.Lock()
	j := e.jobs[rec.ID]
	e.mu.Unlock()
	if j == nil {
		j = e.jobOf(rec)
		e.mu.Lock()
		if e.closed || e.jobs[rec.ID] != nil {
			e.mu.Unlock()
			return e.lookupLocal(rec.ID)
		}
		e.jobs[rec.ID] = j
		e.mu.Unlock()
		e.trackStream(j, +1)
		e.kick()
		return j
	}
	e.mu.Lock()
	was := j.rec
	if was.State == rec.State && sameTime(was.Started, rec.Started) && sameTime(was.MapDone, rec.MapDone) && sameTime(was.Finished, rec.Finished) {
		e.mu.Unlock()
		return j
	}
	if was.State.Finished() {
		e.mu.Unlock()
		return j // an end is final here
	}
	j.setState(rec)
	var cancels []*taskCopy
	if rec.State.Finished() {
		cancels = e.dropRunningLocked(j)
	}
	e.mu.Unlock()
	for _, c := range cancels {
		c.session.cancelTask(c.id)
	}
	if rec.State.Finished() {
		e.trackStream(j, -1)
		if err := e.cleanup(ctx, j); err != nil && ctx.Err() == nil {
			e.log.Error("clean up a job that ended on another server", "job", rec.ID, "err", err)
		}
	}
	e.kick()
	return j
}

func (e *Engine) lookupLocal(id string) *job {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.jobs[id]
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// shareInput copies a new job's input files to the shared blob store and
// adds the job's coordination message to its submission.
func (e *Engine) shareInput(ctx context.Context, in *Input, g *broker.CommitGroup) error {
	in.shared = true
	for _, f := range in.files {
		r, err := os.Open(filepath.Join(in.dir, f.Path))
		if err != nil {
			return fmt.Errorf("job input: %w", err)
		}
		_, err = e.cfg.Shared.Put(ctx, inputBlob(in.jobID, f.Path), r, f.Size)
		r.Close()
		if err != nil {
			return fmt.Errorf("job input: %w", err)
		}
	}
	g.Pushes = append(g.Pushes, broker.QueuePush{Queue: coordQueue(in.jobID), Messages: []broker.NewMessage{{Value: []byte("coordinator")}}})
	return nil
}

// dropShared deletes what a failed submission left in the blob store.
func (e *Engine) dropShared(id string) {
	ctx, cancel := context.WithTimeout(e.ctx, fetchTimeout)
	defer cancel()
	if _, err := e.cfg.Shared.DeletePrefix(ctx, jobBlobPrefix(id)); err != nil {
		e.log.Error("drop a failed submission's shared input", "job", id, "err", err)
	}
}

// readSharedChunk reads a map task's chunk from the shared blob store.
// Small chunks come from the window of the input they lie in, read whole
// once: many small tasks then cost the store one read per window, not one
// each.
func (j *job) readSharedChunk(t mapTask) ([]byte, error) {
	if t.File < 0 || t.File >= len(j.rec.Files) {
		return nil, fmt.Errorf("map task names input file %d of %d", t.File, len(j.rec.Files))
	}
	if t.Length > inputWindow {
		return j.readShared(t.File, t.Offset, t.Length)
	}
	out := make([]byte, 0, t.Length)
	for w := t.Offset / inputWindow; w <= (t.Offset+t.Length-1)/inputWindow; w++ {
		data, err := j.inputWindow(t.File, w)
		if err != nil {
			return nil, err
		}
		from := max(t.Offset-w*inputWindow, 0)
		to := min(t.Offset+t.Length-w*inputWindow, int64(len(data)))
		if from > to {
			return nil, fmt.Errorf("read input chunk: %d+%d lies outside the input", t.Offset, t.Length)
		}
		out = append(out, data[from:to]...)
	}
	if int64(len(out)) != t.Length {
		return nil, fmt.Errorf("read input chunk: %d bytes of %d", len(out), t.Length)
	}
	return out, nil
}

// inputWindow is the span of a job's input a server reads and keeps at
// once; a job keeps inputWindows of them.
const (
	inputWindow  = 1 << 20
	inputWindows = 2
)

// window is one read span of an input file.
type window struct {
	file int
	n    int64
	data []byte
}

// inputWindow returns window w of input file f, read from the blob store
// unless it is one of the last ones read.
func (j *job) inputWindow(f int, w int64) ([]byte, error) {
	j.windowsMu.Lock()
	defer j.windowsMu.Unlock()
	for i, win := range j.windows {
		if win.file == f && win.n == w && win.data != nil {
			j.windows[0], j.windows[i] = j.windows[i], j.windows[0]
			return win.data, nil
		}
	}
	size := j.rec.Files[f].Size
	data, err := j.readShared(f, w*inputWindow, min(inputWindow, size-w*inputWindow))
	if err != nil {
		return nil, err
	}
	if len(j.windows) < inputWindows {
		j.windows = append(j.windows, window{})
	}
	copy(j.windows[1:], j.windows[:len(j.windows)-1])
	j.windows[0] = window{file: f, n: w, data: data}
	return data, nil
}

// readShared reads n bytes of input file f from off.
func (j *job) readShared(f int, off, n int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	r, err := blob.OpenRetrying(ctx, j.shared, inputBlob(j.rec.ID, j.rec.Files[f].Path), off, n, fetchTimeout)
	if err != nil {
		return nil, fmt.Errorf("read input chunk: %w", err)
	}
	defer r.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read input chunk: %w", err)
	}
	return b, nil
}

// checkSharedInputs makes sure a job's input is in the blob store, at its
// sizes.
func (j *job) checkSharedInputs() error {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	for _, f := range j.rec.Files {
		n, err := j.shared.Size(ctx, inputBlob(j.rec.ID, f.Path))
		if err != nil {
			return err
		}
		if n != f.Size {
			return fmt.Errorf("%s is %d bytes, want %d", f.Path, n, f.Size)
		}
	}
	return nil
}

// openSharedRun opens a spilled run in the blob store from offset on.
func openSharedRun(j *job, name string, offset int64) (pairSource, io.Closer, error) {
	if offset < 0 {
		return nil, nil, fmt.Errorf("offset %d is outside run %s", offset, name)
	}
	// The reader outlives this call: it reads the rest as it is consumed.
	r, err := blob.OpenRetrying(context.Background(), j.shared, runBlob(j, name), offset, -1, fetchTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("spilled run: %w", err)
	}
	return &fileRun{r: bufio.NewReaderSize(r, 64<<10), pos: offset}, r, nil
}

// cleanupShared deletes a finished job's blobs: all of them, or all but its
// output when it is done.
func (e *Engine) cleanupShared(ctx context.Context, j *job, state State) error {
	e.mu.Lock()
	j.coord, j.coordName = nil, "" // its queue is purged
	e.mu.Unlock()
	j.windowsMu.Lock()
	j.windows = nil
	j.windowsMu.Unlock()
	if j.shared == nil {
		return nil
	}
	if _, err := e.commitOne(ctx, broker.CommitGroup{RecordDelete: []string{coordPrefix + j.rec.ID}}); err != nil {
		return err
	}
	prefixes := []string{jobBlobPrefix(j.rec.ID)}
	if state == StateDone {
		prefixes = []string{jobBlobPrefix(j.rec.ID) + "input-", jobBlobPrefix(j.rec.ID) + "runs/"}
	}
	for _, p := range prefixes {
		if _, err := j.shared.DeletePrefix(ctx, p); err != nil {
			return fmt.Errorf("job %s: delete shared files: %w", j.rec.ID, err)
		}
	}
	return nil
}

// taskSums are the sums of a job's committed task records.
type taskSums struct {
	done     map[Phase]int
	counters map[string]int64
	bytesOut int64
	records  int64
}

// readSums sums a job's task records in the store. Records that do not
// decode are skipped (the server that loads the job at its start sets them
// aside).
func (e *Engine) readSums(ctx context.Context, j *job) (*taskSums, error) {
	s := &taskSums{done: map[Phase]int{}, counters: map[string]int64{}}
	prefix := taskKeyPrefix(j.rec.ID)
	err := e.scanRecords(ctx, prefix, func(r broker.Record) error {
		p, err := parseTaskKey(strings.TrimPrefix(r.Key, prefix))
		var tr taskRecord
		if err == nil {
			err = json.Unmarshal(r.Value, &tr)
		}
		if err != nil || tr.BytesIn < 0 || tr.BytesOut < 0 || tr.Records < 0 {
			return nil
		}
		s.done[p]++
		for k, v := range tr.Counters {
			s.counters[k] += v
		}
		if p == PhaseReduce {
			s.bytesOut += tr.BytesOut
			s.records += tr.Records
		}
		return nil
	})
	return s, err
}

// queueFigures are a job's map and reduce queues' lengths and leases.
func (e *Engine) queueFigures(ctx context.Context, j *job) ([4]int64, error) {
	var f [4]int64
	for i, q := range []string{mapQueue(j.rec.ID), reduceQueue(j.rec.ID)} {
		st, err := e.q.Stats(ctx, q)
		if errors.Is(err, broker.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return f, err
		}
		f[2*i], f[2*i+1] = st.Length, st.InFlight
	}
	return f, nil
}

// sumsMaxAge is how old the sums a status shows of a running job may be.
const sumsMaxAge = time.Second

// statusSums brings a job's sums up to date for a status: those of a
// running job are read again when older than sumsMaxAge, those of an ended
// one once after it ended. Sums are read only for a status someone asked
// for, not on every server for every job: reading them scans every task
// record of the job, and doing that everywhere, every second, made what a
// task costs grow with the servers. While another call reads a running
// job's sums, a status shows the last ones; an ended job's status waits
// for its final sums.
func (e *Engine) statusSums(ctx context.Context, j *job) {
	if !e.shared() || j.rec.Spec.Stream {
		return
	}
	e.mu.Lock()
	final := j.rec.State.Finished()
	fresh := j.sumsFinal || (j.stored != nil && !final && time.Since(j.sumsRead) < sumsMaxAge)
	e.mu.Unlock()
	if fresh {
		return
	}
	if final {
		j.sumsMu.Lock()
	} else if !j.sumsMu.TryLock() {
		return
	}
	defer j.sumsMu.Unlock()
	e.refreshSums(ctx, j, false)
}

// sumsStaleLocked reports whether a status of an ended job would show sums
// read before it ended. e.mu held.
func (e *Engine) sumsStaleLocked(j *job) bool {
	return e.shared() && !j.rec.Spec.Stream && j.rec.State.Finished() && !j.sumsFinal
}

// refreshSums reads a job's sums from the store when its queues changed
// since the last read, always when forced or the job ended.
func (e *Engine) refreshSums(ctx context.Context, j *job, force bool) {
	if j.rec.Spec.Stream {
		return
	}
	e.mu.Lock()
	final := j.rec.State.Finished() // before the read: then it is the last
	e.mu.Unlock()
	f, err := e.queueFigures(ctx, j)
	if err != nil {
		return
	}
	e.mu.Lock()
	same := j.stored != nil && j.storedAt == f
	if same && !force && !final {
		j.sumsRead = time.Now()
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	s, err := e.readSums(ctx, j)
	if err != nil {
		return
	}
	e.mu.Lock()
	j.stored, j.storedAt, j.sumsRead = s, f, time.Now()
	j.sumsFinal = j.sumsFinal || final
	e.mu.Unlock()
}

// sharedStatusLocked fills a status from what the store says of the job:
// the sums of every server's tasks and the queues' figures. e.mu held.
func (e *Engine) sharedStatusLocked(j *job, st *Status) {
	switch {
	case j.rec.State.Finished():
	case j.coord != nil:
		st.Coordinator = e.cfg.Server
	default:
		st.Coordinator = j.coordName
	}
	s := j.stored
	if s == nil || j.rec.Spec.Stream {
		return
	}
	st.Counters = map[string]int64{}
	for k, v := range s.counters {
		st.Counters[k] = v
	}
	st.BytesOut, st.Records = s.bytesOut, s.records
	for i, p := range []Phase{PhaseMap, PhaseReduce} {
		pc := st.Phases[p]
		pc.Done = max(pc.Done, s.done[p])
		pc.Running = max(pc.Running, int(j.storedAt[2*i+1]))
		if p == PhaseReduce && pc.Total > 0 {
			pc.Total = max(pc.Total, pc.Done+pc.Running+int(j.storedAt[2*i]))
		}
		st.Phases[p] = pc
	}
}

// advanceShared is advance when servers share the store: only the
// coordinator moves a job on, from the store's counts.
func (e *Engine) advanceShared(ctx context.Context, j *job) error {
	// The committer and the sharer both advance jobs: one at a time, or
	// both could start a phase.
	e.advanceMu.Lock()
	defer e.advanceMu.Unlock()
	e.mu.Lock()
	rec, coord := j.rec, j.coord != nil
	e.mu.Unlock()
	if rec.State.Finished() {
		return e.cleanup(ctx, j)
	}
	if !coord || rec.Spec.Stream || e.runsPhase(j) {
		return nil
	}
	f, err := e.queueFigures(ctx, j)
	if err != nil {
		return err
	}
	phase := 0
	if rec.State == StateReducing {
		phase = 1
	}
	if f[2*phase] > 0 || f[2*phase+1] > 0 {
		return nil // tasks wait or run somewhere
	}
	// The phase's queue is empty with nothing leased: every task was
	// committed (or dead-lettered, which fails the job). Count them, and
	// make sure no other server ended the job meanwhile.
	s, err := e.readSums(ctx, j)
	if err != nil {
		return err
	}
	e.mu.Lock()
	j.stored, j.storedAt = s, f
	e.mu.Unlock()
	if b, err := e.q.RecordGet(ctx, jobKey(rec.ID)); err == nil {
		if now, err := decodeJobRecord(broker.Record{Key: jobKey(rec.ID), Value: b}); err == nil && now.State != rec.State {
			e.adopt(ctx, now)
			return nil
		}
	}
	mapDone := s.done[PhaseMap] >= rec.MapTasks
	reduceDone := rec.State == StateReducing && s.done[PhaseReduce] >= rec.Spec.Reducers
	if testHookMoveOn != nil && (mapDone || reduceDone) {
		testHookMoveOn(e, rec.ID)
	}
	if err := e.moveOn(ctx, j, rec, mapDone, reduceDone); err != nil {
		return err
	}
	if e.state(j) == StateDone {
		e.refreshSums(ctx, j, true)
	}
	return nil
}

// runsPhase reports whether this server holds a task of j's current phase
// that is not committed yet: its lease keeps the phase open, so the
// coordinator need not ask the store's counts (as it would after every
// batch of results it commits) while its own workers run the phase.
func (e *Engine) runsPhase(j *job) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := j.phase()
	for _, t := range j.running {
		if t.phase == p && t.live() {
			return true
		}
	}
	return false
}

// commitResults commits groups of results. When servers share the store
// (Redis), a failed call is tried again for up to commitRetry (the store
// may be restarting): a group whose first try did apply finds its leases
// acked and is not applied again.
func (e *Engine) commitResults(ctx context.Context, groups []broker.CommitGroup) ([]broker.CommitResult, error) {
	res, err := e.q.Commit(ctx, groups)
	if err == nil || !e.shared() || errors.Is(err, broker.ErrInvalid) {
		return res, err
	}
	deadline := time.Now().Add(commitRetry)
	for wait := 50 * time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, time.Second) {
		e.log.Warn("commit task results: trying again", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		if res, err = e.q.Commit(ctx, groups); err == nil || errors.Is(err, broker.ErrInvalid) {
			return res, err
		}
	}
	return nil, err
}

// commitRetry bounds the retries of a commit on a shared store.
const commitRetry = time.Minute

// leaseGone drops a task whose result was not applied: its lease is no
// longer this server's (it lapsed and the task went back, or an earlier try
// of this very commit applied it), so the task is not this server's either.
func (e *Engine) leaseGone(t *task) {
	e.mu.Lock()
	var cancels []*taskCopy
	for _, c := range t.giveBackLocked() {
		delete(e.copies, c.id)
		cancels = append(cancels, c)
	}
	e.mu.Unlock()
	for _, c := range cancels {
		c.session.cancelTask(c.id)
	}
}

// syncLoop is the sharer: a round every syncInterval, and a quick one for
// the jobs the store's events named.
func (e *Engine) syncLoop(ctx context.Context) {
	t := time.NewTicker(syncInterval)
	defer t.Stop()
	e.syncRound(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.syncRound(ctx)
		case <-e.syncC:
			e.syncDirty(ctx)
		}
	}
}

// markDirty asks the sharer to look at a job soon: an event named one of
// its queues.
func (e *Engine) markDirty(id string) {
	e.dirtyMu.Lock()
	e.dirty[id] = true
	e.dirtyMu.Unlock()
	select {
	case e.syncC <- struct{}{}:
	default:
	}
}

// worthALook reports whether an event on a job's queue (rest is the name
// after job/ID/) may mean news for this server: the job is new here, it is
// coordinated here (a result committed elsewhere may end a phase), or its
// record may have changed (reduce tasks pushed, queues purged). A result
// pushed to a partition queue is none of a non-coordinator's business:
// were every server to look at each, what a task costs would grow with the
// servers.
func (e *Engine) worthALook(id, rest string, kind broker.EventKind) bool {
	if kind == broker.EventPurge || rest == "reduce" || rest == "coord" {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j := e.jobs[id]
	return j == nil || j.coord != nil
}

// syncDirty looks at the jobs events named: a new one is read, the one
// coordinated here may move on, another's record may have changed.
func (e *Engine) syncDirty(ctx context.Context) {
	e.dirtyMu.Lock()
	ids := e.dirty
	e.dirty = map[string]bool{}
	e.dirtyMu.Unlock()
	for id := range ids {
		e.mu.Lock()
		j := e.jobs[id]
		coord := j != nil && j.coord != nil
		e.mu.Unlock()
		switch {
		case coord:
			e.advanceQuietly(ctx, j)
		case j == nil || !j.rec.State.Finished():
			e.loadShared(ctx, id)
		}
	}
}

// syncRound is the sharer's round: job records, coordination, sums,
// workers and bans.
func (e *Engine) syncRound(ctx context.Context) {
	seen := map[string]bool{}
	err := e.scanRecords(ctx, jobPrefix, func(r broker.Record) error {
		rec, err := decodeJobRecord(r)
		if err != nil {
			return nil // set aside by the next server to start
		}
		seen[rec.ID] = true
		e.adopt(ctx, rec)
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("read shared job records", "err", err)
		}
		return
	}
	var live []*job
	e.mu.Lock()
	for id, j := range e.jobs {
		switch {
		case !seen[id] && j.rec.State.Finished():
			delete(e.jobs, id) // deleted on another server
		case !j.rec.State.Finished():
			live = append(live, j)
		}
	}
	e.mu.Unlock()
	for _, j := range live {
		if ctx.Err() != nil {
			return
		}
		e.coordinate(ctx, j)
	}
	e.shareWorkers(ctx)
	e.returnHeld(ctx, false)
}

// coordinate renews this server's coordination lease of a job, or tries to
// take it.
func (e *Engine) coordinate(ctx context.Context, j *job) {
	if j.rec.Spec.Stream {
		return
	}
	id := j.rec.ID
	e.mu.Lock()
	held := j.coord
	e.mu.Unlock()
	if held != nil {
		l, err := e.q.Extend(ctx, coordQueue(id), held.ID, coordLease)
		e.mu.Lock()
		if err != nil {
			j.coord = nil
		} else {
			j.coord = &l
		}
		e.mu.Unlock()
		if err != nil {
			e.log.Warn("lost the coordination of a job", "job", id, "err", err)
			return
		}
		e.advanceQuietly(ctx, j) // results with no output announce nothing
		return
	}
	ls, err := e.q.Lease(ctx, coordQueue(id), 1, coordLease)
	if err != nil || len(ls) == 0 {
		e.readCoordinator(ctx, j, err)
		return
	}
	e.mu.Lock()
	j.coord = &ls[0]
	e.mu.Unlock()
	e.log.Info("coordinating job", "job", id, "state", j.rec.State, "server", e.cfg.Server)
	if err := e.putRecords(ctx, broker.Record{Key: coordPrefix + id, Value: []byte(e.cfg.Server)}); err != nil {
		e.log.Warn("record a job's coordinator", "job", id, "err", err)
	}
	e.markStarted(ctx, j)
	if e.endedElsewhere(ctx, j) {
		return // the last coordinator moved it on over an end
	}
	e.advanceQuietly(ctx, j)
}

// readCoordinator notes which server coordinates j, as it recorded; a job
// whose coordination message is gone (a store that lost it) gets a new one.
func (e *Engine) readCoordinator(ctx context.Context, j *job, leaseErr error) {
	id := j.rec.ID
	if leaseErr == nil {
		if st, err := e.q.Stats(ctx, coordQueue(id)); (err == nil && st.Length == 0 && st.InFlight == 0) || errors.Is(err, broker.ErrQueueNotFound) {
			if rec, err := e.q.RecordGet(ctx, jobKey(id)); err == nil && len(rec) > 0 && !e.state(j).Finished() {
				e.log.Warn("job had no coordination message: pushing one", "job", id)
				_, _ = e.commitOne(ctx, broker.CommitGroup{Pushes: []broker.QueuePush{{Queue: coordQueue(id), Messages: []broker.NewMessage{{Value: []byte("coordinator")}}}}})
			}
		}
	}
	name, err := e.q.RecordGet(ctx, coordPrefix+id)
	if err != nil {
		return
	}
	e.mu.Lock()
	j.coordName = truncate(string(name), 128)
	e.mu.Unlock()
}

func (e *Engine) advanceQuietly(ctx context.Context, j *job) {
	if _, err := guard(e.log, func() (struct{}, error) { return struct{}{}, e.advance(ctx, j) }); err != nil && ctx.Err() == nil {
		e.log.Error("advance job", "job", j.rec.ID, "err", err)
		if errors.Is(err, errPanic) {
			e.failJob(ctx, j, err.Error())
		}
	}
}

// serverWorkers is a server's workers record.
type serverWorkers struct {
	Server  string       `json:"server"`
	Until   time.Time    `json:"until"`
	Workers []WorkerInfo `json:"workers"`
}

// remoteState is what the sharer read of the other servers (Engine.mu).
type remoteState struct {
	workers []WorkerInfo
	flagged []remoteBan
}

type remoteBan struct {
	key  string
	info WorkerInfo
}

// banRecord is a flagged worker's ban as stored.
type banRecord struct {
	Key    string     `json:"key"`
	Worker WorkerInfo `json:"worker"`
}

func workersKey(server string) string { return workersPrefix + url.PathEscape(server) }
func banKeyRecord(key string) string  { return banPrefix + hashName(key) }

// shareWorkers writes this server's workers record and reads the others'
// and every ban.
func (e *Engine) shareWorkers(ctx context.Context) {
	now := time.Now().UTC()
	e.mu.Lock()
	mine := serverWorkers{Server: e.cfg.Server, Until: now.Add(workersTTL), Workers: make([]WorkerInfo, 0, len(e.sessions))}
	for _, s := range e.sessions {
		if !s.standing.Flagged {
			mine.Workers = append(mine.Workers, s.infoLocked())
		}
	}
	e.mu.Unlock()
	b, _ := json.Marshal(mine)
	if err := e.putRecords(ctx, broker.Record{Key: workersKey(e.cfg.Server), Value: b}); err != nil {
		return
	}
	var others []WorkerInfo
	var stale []string
	_ = e.scanRecords(ctx, workersPrefix, func(r broker.Record) error {
		var sw serverWorkers
		switch {
		case r.Key == workersKey(e.cfg.Server):
		case json.Unmarshal(r.Value, &sw) != nil:
		case now.After(sw.Until.Add(staleRecords)):
			stale = append(stale, r.Key)
		case now.Before(sw.Until):
			for _, w := range sw.Workers {
				w.Server = sw.Server
				others = append(others, w)
			}
		}
		return nil
	})
	if len(stale) > 0 {
		_, _ = e.commitOne(ctx, broker.CommitGroup{RecordDelete: stale})
	}
	var bans []remoteBan
	_ = e.scanRecords(ctx, banPrefix, func(r broker.Record) error {
		var br banRecord
		if json.Unmarshal(r.Value, &br) == nil && banKeyRecord(br.Key) == r.Key {
			bans = append(bans, remoteBan{key: br.Key, info: br.Worker})
		}
		return nil
	})
	e.mu.Lock()
	e.remote = remoteState{workers: others, flagged: bans}
	e.mu.Unlock()
	e.readTaints(ctx)
}

// recordBan stores a flagged worker's ban, so that no server of the
// service takes it back.
func (e *Engine) recordBan(ctx context.Context, key string, w WorkerInfo) {
	b, _ := json.Marshal(banRecord{Key: key, Worker: w})
	if err := e.putRecords(ctx, broker.Record{Key: banKeyRecord(key), Value: b}); err != nil {
		e.log.Error("record a flagged worker's ban", "err", err)
	}
}

// bannedInStore reports whether a worker of this ban key was flagged, here
// or on a server sharing the store.
func (e *Engine) bannedInStore(ctx context.Context, key string) bool {
	e.mu.Lock()
	local := e.banned[key]
	e.mu.Unlock()
	if local {
		return true
	}
	b, err := e.q.RecordGet(ctx, banKeyRecord(key))
	if err != nil {
		return false
	}
	var br banRecord
	if json.Unmarshal(b, &br) != nil || br.Key != key {
		return false
	}
	e.mu.Lock()
	e.banned[key] = true
	e.mu.Unlock()
	return true
}

// leaveService hands back what this server held for the others at once,
// as it stops: its coordination leases (another server takes them at its
// next round) and its workers record.
func (e *Engine) leaveService() {
	if !e.shared() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e.mu.Lock()
	held := map[string]string{}
	for id, j := range e.jobs {
		if j.coord != nil {
			held[id] = j.coord.ID
			j.coord = nil
		}
	}
	e.mu.Unlock()
	for id, lease := range held {
		_, _ = e.q.Release(ctx, coordQueue(id), []string{lease})
	}
	_, _ = e.commitOne(ctx, broker.CommitGroup{RecordDelete: []string{workersKey(e.cfg.Server)}})
}

// testHookMoveOn, when set by a test, runs as the coordinator is about to
// move a job on, after its last look at the job's record.
var testHookMoveOn func(e *Engine, id string)
