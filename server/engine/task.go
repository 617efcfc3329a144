package engine

import (
	"slices"
	"strconv"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// The task state machine. Every change of a task's state, its copies and
// its verification state happens through the methods in this file, with
// Engine.mu held; everything else only reads.
//
//	              lease taken
//	                   │
//	                   ▼
//	             ┌──preparing──┐  input being read (off the dispatcher)
//	             │      │ ready│
//	             │      ▼      │
//	             │   running ◀─┼── copies come and go: sent to a worker
//	             │      │      │   (addCopy), answered, failed, timed out
//	             │      │      │   or cancelled (dropCopy); results held
//	             │      │      │   for verification (hold) wait for
//	             │      │      │   replicas (wantReplica)
//	             │ finish   giveBack (released, nacked, job ended)
//	             │      ▼      ▼
//	             └──▶ done   returned
//
// A task is in its job's running set exactly while it is preparing or
// running; done and returned are final, and a result or failure that
// arrives for a task in a final state changes nothing (it may still count
// as a free check of its worker). A probe (a known-answer task sent to a
// new worker) is a task of its own that is never in the running set.

// taskState is where a task is.
type taskState uint8

// Task states.
const (
	taskPreparing taskState = iota // leased; its input is being read
	taskRunning                    // ready: copies on workers, or results held
	taskDone                       // its result is committed
	taskReturned                   // given back to its queue, or dropped with its job
	taskProbe                      // a known-answer probe: checked, never committed
)

func (s taskState) String() string {
	return [...]string{"preparing", "running", "done", "returned", "probe"}[s]
}

// task is one leased task and the copies of it workers are running (more
// than one for a backup copy of a slow task, or a replica that checks a
// result).
type task struct {
	job   *job
	phase Phase
	lease broker.Lease
	state taskState

	input   []byte // the task's input as sent (a chunk or a grouped stream)
	offset  uint64 // a map chunk's offset in the whole input
	started time.Time
	copies  []*taskCopy // on workers now, each once
	// followUp is the message of the reduce task that takes the rest of a
	// partition too large for this one; it is pushed with this result.
	followUp []byte

	// Verification: results held until workers agree, the sessions that
	// ran a copy, replicas still to hand out, replicas that failed, whether
	// the server runs the task itself, and the committed result's hash.
	held         []heldResult
	ran          []*session // each once; a task runs on one or two
	wantCopies   int
	replicaFails int
	serverCheck  bool
	doneHash     *[32]byte // once done, if the result was checked
	// doneBackers are the untrusted workers whose agreement alone decided
	// the committed result (none when the server or a trusted worker did).
	doneBackers []*session
	// failCheck: the server runs the task to confirm a failure untrusted
	// workers reported (failedBy), before it counts (failure.go).
	failCheck bool
	failedBy  []failureNote
}

// taskCopy is one copy of a task on one worker session.
type taskCopy struct {
	id      uint64
	task    *task
	session *session
	sent    time.Time
	probe   *knownAnswer // a known-answer probe: checked, never committed
	check   string       // why it runs: api.CheckReplica, CheckProbe, CheckBackup or ""
	percent uint8        // progress the worker last reported
}

// name is how logs and errors name the task: its job, phase and number
// within the job's phase ("mx5c… map 25"), as the pages show it (a copy of
// it on a worker is "#921 map 25" there, #921 being the copy's id on the
// wire, which workers log).
func (t *task) name() string {
	return t.job.rec.ID + " " + t.label()
}

// label is the task's phase and number within its job: "map 25".
func (t *task) label() string {
	return string(t.phase) + " " + strconv.FormatUint(t.lease.Message.ID, 10)
}

// newTaskLocked registers a task whose lease was just taken: preparing, in
// its job's running set.
func (j *job) newTaskLocked(p Phase, l broker.Lease) *task {
	t := &task{job: j, phase: p, lease: l, state: taskPreparing}
	j.running[l.ID] = t
	return t
}

// newProbeLocked is a known-answer probe of k: a task of its own, never
// committed.
func newProbeLocked(k *knownAnswer) *task {
	src := k.task
	return &task{job: src.job, phase: src.phase, lease: src.lease, state: taskProbe,
		input: src.input, offset: src.offset}
}

// live reports whether the task is preparing or running.
func (t *task) live() bool { return t.state == taskPreparing || t.state == taskRunning }

// readyLocked moves a prepared task to running with its input.
func (t *task) readyLocked(input []byte, offset uint64, followUp []byte) bool {
	if t.state != taskPreparing {
		return false
	}
	t.input, t.offset, t.followUp = input, offset, followUp
	t.state = taskRunning
	return true
}

// addCopyLocked sends a new copy of the task to s: it takes one of s's
// credits (the caller took it already) and registers the copy everywhere.
func (e *Engine) addCopyLocked(s *session, t *task) *taskCopy {
	e.copySeq++
	c := &taskCopy{id: e.copySeq, task: t, session: s, sent: time.Now()}
	t.copies = append(t.copies, c)
	e.copies[c.id] = c
	s.copies[c.id] = c
	if !t.ranOn(s) {
		t.ran = append(t.ran, s)
	}
	if t.started.IsZero() {
		t.started = c.sent
	}
	return c
}

// ranOn reports whether a copy of the task was sent to s.
func (t *task) ranOn(s *session) bool { return slices.Contains(t.ran, s) }

// dropCopyLocked forgets a copy: answered, failed, timed out, cancelled or
// gone with its worker. Its worker gets the credit back. It reports
// whether the copy was still registered.
func (e *Engine) dropCopyLocked(c *taskCopy) bool {
	_, had := e.copies[c.id]
	delete(e.copies, c.id)
	if i := slices.Index(c.task.copies, c); i >= 0 {
		c.task.copies = slices.Delete(c.task.copies, i, i+1)
	}
	if c.session != nil {
		if _, ok := c.session.copies[c.id]; ok {
			delete(c.session.copies, c.id)
			c.session.credit++
		}
	}
	return had
}

// idle reports whether no copy of the task runs anywhere.
func (t *task) idle() bool { return len(t.copies) == 0 }

// finishLocked commits the task: done, out of the running set, its sums in
// its job's; a checked result's hash stays as the yardstick of late copies.
// It returns its other copies, detached, for the caller to cancel.
func (t *task) finishLocked(hash [32]byte, checked bool, backers []*session, tr *taskRecord) (others []*taskCopy) {
	t.state = taskDone
	if checked {
		t.doneHash = &hash
		t.doneBackers = backers
	}
	others = t.detachLocked()
	t.job.addResult(t.phase, tr)
	return others
}

// giveBackLocked takes the task out of the engine's hands: its lease is
// (to be) released or nacked by the caller, or its job ended. It returns
// its copies, detached, for the caller to cancel.
func (t *task) giveBackLocked() (copies []*taskCopy) {
	if !t.live() {
		return nil
	}
	t.state = taskReturned
	return t.detachLocked()
}

// detachLocked ends the engine's hold on a task that leaves the running
// set (finished or given back) and returns its copies, detached from it.
func (t *task) detachLocked() (copies []*taskCopy) {
	t.held, t.wantCopies = nil, 0
	delete(t.job.running, t.lease.ID)
	copies, t.copies = t.copies, nil
	return copies
}

// holdLocked keeps a result aside until enough workers agree with it.
func (t *task) holdLocked(h heldResult) { t.held = append(t.held, h) }

// wantReplicaLocked asks the dispatcher for one more copy of the task on
// another worker, to check what is held.
func (t *task) wantReplicaLocked() { t.wantCopies = 1 }

// replicaSentLocked counts one replica asked for as handed out.
func (t *task) replicaSentLocked() { t.wantCopies-- }

// noReplicaLocked gives up asking for replicas: no worker could run one.
func (t *task) noReplicaLocked() { t.wantCopies = 0 }

// replicaFailedLocked counts a failed replica of a task with a held
// result and asks for another, up to maxFails; it reports whether it did.
func (t *task) replicaFailedLocked(maxFails int) bool {
	if len(t.held) == 0 || t.replicaFails >= maxFails {
		return false
	}
	t.replicaFails++
	t.wantCopies = 1
	return true
}

// settleLocked drops what was held once the task's verification ended
// (agreement, or workers that cannot agree).
func (t *task) settleLocked() { t.held, t.wantCopies = nil, 0 }

// slow reports whether the task deserves a backup copy at now: one copy
// running for longer than limit, nothing held.
func (t *task) slow(now time.Time, limit time.Duration) bool {
	return t.state == taskRunning && len(t.copies) == 1 && len(t.held) == 0 && now.Sub(t.started) > limit
}

// dropRunningLocked gives back every live task of j (its job ended, or went
// back to its map phase) and returns their copies, for the caller to cancel
// on their workers.
func (e *Engine) dropRunningLocked(j *job) []*taskCopy {
	var cancels []*taskCopy
	for _, t := range j.running {
		for _, c := range t.giveBackLocked() {
			delete(e.copies, c.id)
			cancels = append(cancels, c)
		}
	}
	return cancels
}
