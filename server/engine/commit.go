package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/wasm/abi"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// The committer is the service that settles what workers answer: it commits
// results (many per store transaction, each with the ack of its task's
// lease), fails and releases tasks, and moves jobs on when a phase
// completes. What a result leads to (commit it, hold it for agreement,
// count it against its worker) is the verifier's to say.

type reqKind int

const (
	reqResult      reqKind = iota // a worker's result for copies[0]
	reqFailure                    // copies[0] failed with message
	reqRelease                    // copies' worker left: give their tasks back
	reqServerCheck                // the server's own run of copies[0].task (error in message)
	reqAudit                      // the server's run contradicted backers' agreement on copies[0].task
)

type commitReq struct {
	kind    reqKind
	copies  []*taskCopy
	result  *wp.Result
	message string
	// final marks a failure that would recur on any worker (a result too
	// large to take): the task fails for good at once.
	final  bool
	worker string
	// timedOut marks a failure the server declared: the copy ran past its
	// job's task_timeout.
	timedOut bool
	// unverified marks a result committed without a check: its worker's
	// committedRefs keep what it takes to undo it.
	unverified bool
	// backers are the untrusted workers whose agreement alone decided the
	// result: each keeps a committedRef to undo it if it is caught (or,
	// for reqAudit, the workers caught).
	backers []*session
	// kind of a failure (reqFailure) a worker reported.
	failKind wp.FailureKind
}

// maxCommitBatch bounds the results committed in one transaction.
const maxCommitBatch = 512

func (e *Engine) submitReq(r commitReq) {
	select {
	case e.commitC <- r:
	case <-e.ctx.Done():
	}
}

// Group commit. A commit costs the store (and this server) mostly the
// same for one result as for a hundred: one script call, its events, one
// advance of the jobs it touched. Committing whatever happens to be
// waiting makes batches of a few results, and on several servers sharing
// a store, each running a share of the workers, batches smaller still. So
// the committer lets a small batch wait for more, at most commitWindow,
// while this server's workers still hold tasks whose results will come;
// once none does (the end of a phase, or a lightly loaded server) it
// commits at once. Waiting holds up no worker: a worker's credit comes
// back when its result arrives, not when it is committed.
var (
	commitWindow = 20 * time.Millisecond // a var for tests
	commitTarget = 128                   // results a batch waits for at most
)

// commitLoop is the committer's loop: it takes what is waiting, up to a
// batch, lets a small batch gather more (group commit), and settles it.
func (e *Engine) commitLoop(ctx context.Context) {
	batch := make([]commitReq, 0, maxCommitBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case r := <-e.commitC:
			batch = append(batch, r)
		}
		batch = e.drainCommits(batch)
		if !e.gather(ctx, &batch) {
			return
		}
		if err := e.commitBatch(ctx, batch); err != nil && ctx.Err() == nil {
			e.log.Error("commit task results", "err", err)
		}
	}
}

// drainCommits adds what waits in commitC to batch, up to a batch.
func (e *Engine) drainCommits(batch []commitReq) []commitReq {
	for len(batch) < maxCommitBatch {
		select {
		case r := <-e.commitC:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// gather lets a batch smaller than commitTarget wait for more requests
// while results are still to come from this server's workers, for at most
// commitWindow. A batch that holds anything but results no check waits
// for (failures, releases, results to verify) goes at once: verification
// is a conversation between workers, and each step of it waiting for a
// batch would hold the job up. It returns false when ctx ends.
func (e *Engine) gather(ctx context.Context, batch *[]commitReq) bool {
	if len(*batch) >= commitTarget || !plainResults(*batch) || !e.resultsToCome() {
		return true
	}
	t := time.NewTimer(commitWindow)
	defer t.Stop()
	for len(*batch) < commitTarget {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case r := <-e.commitC:
			*batch = e.drainCommits(append(*batch, r))
			if !plainResults(*batch) || !e.resultsToCome() {
				return true
			}
		case <-e.gatherC:
			if !e.resultsToCome() {
				return true
			}
		}
	}
	return true
}

// nudgeGather tells a waiting batch to look again whether results are to
// come: a lease or a preparation ended.
func (e *Engine) nudgeGather() {
	select {
	case e.gatherC <- struct{}{}:
	default:
	}
}

// plainResults reports whether every request of batch is a result that
// no check waits for: of a job that verifies nothing, or from a trusted
// worker.
func plainResults(batch []commitReq) bool {
	for _, r := range batch {
		if r.kind != reqResult || r.copies[0].probe != nil {
			return false
		}
		if c := r.copies[0]; c.task.job.verify != VerifyNone && (c.session == nil || !c.session.peer.Trusted) {
			return false
		}
	}
	return true
}

// resultsToCome reports whether results (or failures) are still to come
// from this server's workers: they hold copies of tasks, or tasks are
// being leased or prepared for them.
func (e *Engine) resultsToCome() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.copies) > 0 || e.preparing > 0 || e.leasing
}

// commitBatch handles one batch: results first, in one transaction; then
// failures and releases; then the jobs they touched are advanced.
func (e *Engine) commitBatch(ctx context.Context, batch []commitReq) error {
	touched := map[*job]bool{}
	var results []commitReq
	var groups []broker.CommitGroup
	var records []taskRecord // each group's task record, as it writes it
	var cheaters []*session
	for _, r := range batch {
		var v verdict
		switch {
		case r.kind == reqServerCheck:
			v = e.verifier.serverResult(r)
		case r.kind == reqAudit:
			e.mu.Lock()
			e.verified(r.copies[0].task.job, VerifyDisagreement)
			e.mu.Unlock()
			for _, s := range r.backers {
				e.flag(ctx, s, r.message, touched)
			}
			continue
		case r.kind != reqResult:
			continue
		case r.copies[0].probe != nil:
			if !e.verifier.probe(r.copies[0], r) {
				cheaters = append(cheaters, r.copies[0].session)
			}
			continue
		default:
			v = e.verifier.result(r.copies[0], r)
		}
		cheaters = append(cheaters, v.cheaters...)
		for _, s := range v.refuse {
			e.flag(ctx, s, "the server's own runs contradicted its failures", touched)
		}
		if v.fail != nil {
			e.failTask(ctx, v.fail.copies[0], v.fail.message, wp.FailureJob, v.fail.final, touched)
		}
		if v.release {
			e.releaseTask(ctx, r.copies[0].task, touched)
		}
		if v.commit == nil {
			continue
		}
		t := v.commit.copies[0].task
		var tr taskRecord
		g, err := guard(e.log, func() (broker.CommitGroup, error) { return e.resultGroup(t, *v.commit, &tr) })
		if errors.Is(err, errPanic) {
			e.failJob(ctx, t.job, fmt.Sprintf("%s: %v", t.name(), err))
			continue
		}
		if err != nil {
			e.cfg.Observer.TaskEnded(t.phase, OutcomeFailed, 0, time.Since(v.commit.copies[0].sent))
			e.failTask(ctx, v.commit.copies[0], "bad result: "+err.Error(), wp.FailureInternal, false, touched)
			continue
		}
		results = append(results, *v.commit)
		groups = append(groups, g)
		records = append(records, tr)
	}
	if len(groups) > 0 {
		res, err := e.commitResults(ctx, groups)
		if err != nil {
			return err
		}
		for i, r := range results {
			switch {
			case res[i].Applied:
				e.taskDone(r, &groups[i], &records[i], touched)
				if r.unverified {
					e.rememberUnverified(r, []*session{r.copies[0].session}, &groups[i], &records[i], res[i].Pushed, touched)
				} else if len(r.backers) > 0 {
					e.rememberUnverified(r, r.backers, &groups[i], &records[i], res[i].Pushed, touched)
				}
			case e.shared():
				e.leaseGone(r.copies[0].task)
			}
		}
	}
	for _, s := range cheaters {
		e.flag(ctx, s, "its result disagreed with other workers'", touched)
	}
	for _, r := range batch {
		switch r.kind {
		case reqFailure:
			outcome := OutcomeFailed
			if r.timedOut {
				outcome = OutcomeTimedOut
			}
			c := r.copies[0]
			e.cfg.Observer.TaskEnded(c.task.phase, outcome, 0, time.Since(c.sent))
			e.failTask(ctx, c, r.message, r.failKind, r.final, touched)
		case reqRelease:
			e.releaseCopies(ctx, r.copies, touched)
		}
	}
	for j := range touched {
		if _, err := guard(e.log, func() (struct{}, error) { return struct{}{}, e.advance(ctx, j) }); err != nil {
			e.log.Error("advance job", "job", j.rec.ID, "err", err)
			if errors.Is(err, errPanic) {
				e.failJob(ctx, j, err.Error())
			}
		}
	}
	e.kick()
	return nil
}

// failJob ends a job as failed with why, logging what goes wrong.
func (e *Engine) failJob(ctx context.Context, j *job, why string) {
	if err := e.end(ctx, j, StateFailed, why); err != nil {
		e.log.Error("fail job", "job", j.rec.ID, "err", err)
	}
}

// resultGroup is the transaction group that commits one result: the ack of
// the task's lease, its output, and its task record, which it also leaves
// in tr.
func (e *Engine) resultGroup(t *task, r commitReq, tr *taskRecord) (broker.CommitGroup, error) {
	j := t.job
	res := r.result
	*tr = taskRecord{Micros: res.Elapsed.Microseconds(), Worker: r.worker, BytesIn: int64(len(t.input))}
	if len(res.Counters) > 0 {
		tr.Counters = make(map[string]int64, len(res.Counters))
		for _, c := range res.Counters {
			tr.Counters[c.Name] = c.Value
		}
	}
	g := broker.CommitGroup{Acks: []broker.LeaseRef{{Queue: j.queue(t.phase), LeaseID: t.lease.ID}}}
	switch {
	case j.rec.Spec.Stream:
		msgs, n, err := streamMessages(res.Partitions)
		if err != nil {
			return g, err
		}
		tr.Records, tr.BytesOut = n, int64(len(msgs))
		if len(msgs) > 0 {
			g.Pushes = []broker.QueuePush{{Queue: j.rec.Spec.OutputQueue, Messages: msgs}}
		}
		return g, nil // a stream keeps no task records: it never ends
	case t.phase == PhaseMap:
		for p, stream := range res.Partitions {
			if len(stream) > 0 {
				msg, err := e.runMessage(j, runName('m', t.lease.Message.ID, r.copies[0].id, p), stream)
				if err != nil {
					return g, err
				}
				g.Pushes = append(g.Pushes, broker.QueuePush{Queue: partQueue(j.rec.ID, p), Messages: []broker.NewMessage{{Value: msg}}})
				tr.BytesOut += int64(len(stream))
			}
		}
	default:
		stream := res.Partitions[0]
		msg, err := e.runMessage(j, runName('o', t.lease.Message.ID, r.copies[0].id, 0), stream)
		if err != nil {
			return g, err
		}
		g.Pushes = []broker.QueuePush{{Queue: outQueue(j.rec.ID), Messages: []broker.NewMessage{{Value: msg}}}}
		if t.followUp != nil {
			g.Pushes = append(g.Pushes, broker.QueuePush{Queue: reduceQueue(j.rec.ID), Messages: []broker.NewMessage{{Value: t.followUp}}})
		}
		tr.BytesOut = int64(len(stream))
		if q := j.rec.Spec.OutputQueue; q != "" {
			msgs, n, err := streamMessages(res.Partitions[:1])
			if err != nil {
				return g, err
			}
			if len(msgs) > 0 {
				g.Pushes = append(g.Pushes, broker.QueuePush{Queue: q, Messages: msgs})
			}
			tr.Records = n
		} else if tr.Records, err = countPairs(stream); err != nil {
			return g, err
		}
	}
	g.RecordSet = []broker.Record{tr.record(j.rec.ID, t.phase, t.lease.Message.ID)}
	return g, nil
}

// streamMessages turns pair streams into one output-queue message per
// pair: {"key": ..., "value": ...} (api.PairJSON).
func streamMessages(parts [][]byte) ([]broker.NewMessage, int64, error) {
	var msgs []broker.NewMessage
	for _, stream := range parts {
		pr := abi.NewPairReader(stream)
		for {
			k, v, ok := pr.Next()
			if !ok {
				break
			}
			msgs = append(msgs, broker.NewMessage{Value: api.MarshalPair(k, v)})
		}
		if err := pr.Err(); err != nil {
			return nil, 0, err
		}
	}
	return msgs, int64(len(msgs)), nil
}

func countPairs(stream []byte) (int64, error) {
	pr := abi.NewPairReader(stream)
	n := int64(0)
	for {
		if _, _, ok := pr.Next(); !ok {
			return n, pr.Err()
		}
		n++
	}
}

// taskDone records a committed result: the task is done, its other copies
// are cancelled, and its sums join the job's. rec is the task record g
// writes, if it writes one.
func (e *Engine) taskDone(r commitReq, g *broker.CommitGroup, rec *taskRecord, touched map[*job]bool) {
	t := r.copies[0].task
	j := t.job
	var tr taskRecord
	if len(g.RecordSet) > 0 {
		tr = *rec
	} else { // stream: no record, count what was pushed
		for _, p := range g.Pushes {
			tr.Records += int64(len(p.Messages))
		}
		tr.Micros = r.result.Elapsed.Microseconds()
		for _, c := range r.result.Counters {
			if tr.Counters == nil {
				tr.Counters = map[string]int64{}
			}
			tr.Counters[c.Name] = c.Value
		}
	}
	e.tasksDone.Add(1)
	e.bytesDone.Add(int64(len(t.input)))
	h := resultHash(r.result)
	e.mu.Lock()
	// Only a checked (or trusted) result is a yardstick for the late copies
	// of its task: one committed unchecked may be the wrong one, and an
	// honest late copy must not be flagged for disagreeing.
	checked := j.verify != VerifyNone && !j.rec.Spec.Stream && !r.unverified
	others := t.finishLocked(h, checked, r.backers, &tr)
	e.mu.Unlock()
	e.cfg.Observer.TaskEnded(t.phase, OutcomeDone, time.Duration(tr.Micros)*time.Microsecond, time.Since(r.copies[0].sent))
	for _, c := range others {
		c.session.cancelTask(c.id)
	}
	touched[j] = true
}

// failTask handles a failed copy: if no other copy of the task is still
// running, the task's lease is nacked (or, for a final failure, dead
// whatever its attempts), and when it has failed MaxAttempts times the job
// fails with its error.
func (e *Engine) failTask(ctx context.Context, c *taskCopy, msg string, kind wp.FailureKind, final bool, touched map[*job]bool) {
	t := c.task
	j := t.job
	e.mu.Lock()
	e.dropCopyLocked(c)
	if t.state != taskRunning || !t.idle() {
		e.mu.Unlock()
		return // done meanwhile, or a backup copy may still succeed
	}
	if e.checkFailureLocked(c, msg, kind, final) {
		e.mu.Unlock() // the server runs the task before the failure counts
		return
	}
	if !final && t.replicaFailedLocked(j.rec.Spec.MaxAttempts) {
		e.mu.Unlock() // a replica failed while a result is held: ask another worker
		e.kick()
		return
	}
	t.giveBackLocked()
	j.failed[t.phase]++
	e.mu.Unlock()
	e.log.Warn("task failed", "job", j.rec.ID, "task", t.name(), "attempt", t.lease.Message.Attempts+1, "final", final, "err", msg)
	attempts := j.rec.Spec.MaxAttempts
	if final {
		attempts = 1
	}
	dead, err := e.q.Nack(ctx, broker.LeaseNackParams{Queue: j.queue(t.phase), LeaseID: t.lease.ID, Error: msg, MaxAttempts: attempts})
	if errors.Is(err, broker.ErrLeaseNotFound) {
		return
	}
	if err != nil {
		e.log.Error("return failed task", "task", t.name(), "err", err)
		return
	}
	if dead && !j.rec.Spec.Stream {
		why := fmt.Sprintf("task %s failed %s: %s", t.label(), times(t.lease.Message.Attempts+1), msg)
		if final && kind != wp.FailureJob { // a confirmed module failure keeps its count
			why = fmt.Sprintf("task %s failed: %s", t.label(), msg)
		}
		e.failJob(ctx, j, why)
	}
	touched[j] = true
}

// releaseCopies returns the tasks of a departed worker: a task with no other
// copy running goes back to the head of its queue at once, its attempts
// unchanged (the worker left; the task did not fail).
func (e *Engine) releaseCopies(ctx context.Context, copies []*taskCopy, touched map[*job]bool) {
	byQueue := map[string][]string{}
	e.mu.Lock()
	for _, c := range copies {
		t := c.task
		e.cfg.Observer.TaskEnded(t.phase, OutcomeReturned, 0, time.Since(c.sent))
		e.dropCopyLocked(c)
		switch {
		case t.state != taskRunning || !t.idle():
		case len(t.held) > 0:
			t.wantReplicaLocked() // a result is held: the replica runs elsewhere
		default:
			t.giveBackLocked()
			q := t.job.queue(t.phase)
			byQueue[q] = append(byQueue[q], t.lease.ID)
			touched[t.job] = true
		}
	}
	e.mu.Unlock()
	for q, ids := range byQueue {
		if _, err := e.q.Release(ctx, q, ids); err != nil {
			e.log.Error("return tasks of a departed worker", "queue", q, "err", err)
		}
	}
}

// releaseTask returns a task with nothing running or held to its queue.
func (e *Engine) releaseTask(ctx context.Context, t *task, touched map[*job]bool) {
	e.mu.Lock()
	if t.state != taskRunning || !t.idle() || len(t.held) > 0 {
		e.mu.Unlock()
		return
	}
	t.giveBackLocked()
	e.mu.Unlock()
	if _, err := e.q.Release(ctx, t.job.queue(t.phase), []string{t.lease.ID}); err != nil {
		e.log.Error("return task", "task", t.name(), "err", err)
	}
	touched[t.job] = true
}

// rememberUnverified keeps what it takes to undo a result committed without
// a check, or on the agreement of untrusted workers alone, on each session
// whose word it rests on: if any of them is caught, it is undone.
func (e *Engine) rememberUnverified(r commitReq, on []*session, g *broker.CommitGroup, rec *taskRecord, pushed []broker.Message, touched map[*job]bool) {
	t := r.copies[0].task
	ref := &committedRef{job: t.job, phase: t.phase, queue: t.job.queue(t.phase), value: t.lease.Message.Value, msgID: t.lease.Message.ID}
	for _, m := range pushed {
		ref.pushed = append(ref.pushed, broker.MessageRef{Queue: m.Queue, ID: m.ID})
	}
	if len(g.RecordSet) > 0 {
		ref.record = *rec
	}
	flagged := false
	e.mu.Lock()
	for _, s := range on {
		if s == nil {
			continue
		}
		if s.standing.Flagged {
			flagged = true
		} else {
			s.unverified = append(s.unverified, ref)
		}
	}
	e.mu.Unlock()
	if flagged { // caught while this result was on its way in: undo it now
		if err := e.rerun(e.ctx, ref, touched); err != nil {
			e.log.Error("undo a result of a flagged worker", "job", ref.job.rec.ID, "err", err)
		}
	}
}

// times is "1 time" or "N times".
func times(n int) string {
	if n == 1 {
		return "1 time"
	}
	return strconv.Itoa(n) + " times"
}
