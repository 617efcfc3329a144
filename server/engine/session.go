package engine

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabreduce/tabreduce/api"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// Session limits.
const (
	helloTimeout = 10 * time.Second
	sendTimeout  = 10 * time.Second
	maxAbuse     = 10 // frames naming tasks a worker does not hold, before it is dropped
	// maxOutFrames bounds the frames waiting to be written to one worker,
	// beyond one per task its credit allows (tasks may travel a frame
	// each): TASKS frames of dispatch rounds and CANCELs.
	maxOutFrames = 32
)

// session is one connected worker. Its credit (guarded by Engine.mu) is how
// many more tasks it may be sent: slots × PrefetchPerSlot, less the tasks it
// holds; the dispatcher never sends beyond it.
type session struct {
	e         *Engine
	id        string
	t         Transport
	peer      Peer
	hello     wp.Hello
	maxCredit int // the credit it starts with
	// Guarded by e.mu.
	credit     int
	copies     map[uint64]*taskCopy
	cancelled  map[uint64]struct{} // copies cancelled whose answer may still come
	abuse      int
	standing   Standing
	probed     bool            // a known-answer probe was sent
	unverified []*committedRef // results committed without a check, or on its agreement alone
	// net is the worker's network (networkOf), slots the slots believed
	// (slotsFor); contradicted counts its failures the server's own run
	// contradicted; a throttled worker holds one task at a time.
	net          string
	slots        int
	contradicted int
	throttled    bool

	outMu     sync.Mutex
	out       [][]byte     // frames waiting to be written
	writing   bool         // a writer goroutine is draining out
	lastSeen  atomic.Int64 // unix ns
	connected time.Time
	done      atomic.Int64
	failed    atomic.Int64
	bytesIn   atomic.Int64
	closeOnce sync.Once
	closed    chan struct{}
	cancel    context.CancelFunc // ends the read loop's context
}

// ServeWorker runs one worker session until the worker leaves, breaks the
// protocol, misses its heartbeats, or the engine closes. Every task the
// worker held goes back to its queue at once.
func (e *Engine) ServeWorker(ctx context.Context, t Transport, p Peer) error {
	hctx, hcancel := context.WithTimeout(ctx, helloTimeout)
	frame, err := t.Recv(hctx)
	hcancel()
	if err != nil {
		t.Close("no hello")
		return fmt.Errorf("worker hello: %w", err)
	}
	f, err := wp.DecodeLimit(frame, e.maxFrame())
	hello, ok := f.(*wp.Hello)
	if err == nil && !ok {
		err = fmt.Errorf("%w: first frame is %s, want HELLO", wp.ErrInvalid, f.Type())
	}
	if err == nil && hello.Protocol != wp.ProtocolVersion {
		err = fmt.Errorf("%w: protocol %d, this server speaks %d", wp.ErrVersion, hello.Protocol, wp.ProtocolVersion)
	}
	if err != nil {
		sendError(ctx, t, err)
		return err
	}
	if e.bannedInStore(ctx, banKeyOf(p, hello)) {
		sendError(ctx, t, errRefused)
		return errRefused
	}
	e.readCatches(ctx, p)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := e.newSession(t, p, hello, cancel)
	if s == nil {
		err := fmt.Errorf("%w: server shutting down", errStopped)
		if !e.isClosed() {
			err = errRefused
		}
		sendError(ctx, t, err)
		return err
	}
	defer e.endSession(s)
	e.log.Info("worker connected", "worker", s.id, "kind", hello.Kind, "slots", hello.Slots,
		"name", hello.Name, "remote", p.RemoteAddr)
	e.kick()
	return s.readLoop(ctx)
}

// MaxFrame is the largest frame the engine takes from a worker: a result
// of MaxTaskBytes and room for its counters. A transport reads no more.
func (e *Engine) MaxFrame() int { return e.cfg.MaxTaskBytes + 1<<20 }

func (e *Engine) maxFrame() int { return e.MaxFrame() }

func sendError(ctx context.Context, t Transport, err error) {
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = t.Send(sctx, wp.Encode(&wp.Error{Code: errorCode(err), Message: err.Error()}))
	t.Close(err.Error())
}

// errRefused answers a worker flagged for wrong results that comes back.
var errRefused = errors.New("this worker returned results that failed verification and is refused")

func errorCode(err error) string {
	if errors.Is(err, errStopped) {
		return wp.CodeUnavailable
	}
	if errors.Is(err, errRefused) {
		return wp.CodeUnauthorized
	}
	return wp.CodeOf(err)
}

func (e *Engine) newSession(t Transport, p Peer, h *wp.Hello, cancel context.CancelFunc) *session {
	var b [6]byte
	_, _ = rand.Read(b[:])
	slots := e.slotsFor(p, h.Slots)
	s := &session{
		e: e, id: "w" + hex.EncodeToString(b[:]), t: t, peer: p, hello: *h, net: networkOf(p.RemoteAddr), slots: slots,
		credit: slots * (e.cfg.PrefetchPerSlot + 1), maxCredit: slots * (e.cfg.PrefetchPerSlot + 1),
		copies: map[uint64]*taskCopy{}, cancelled: map[uint64]struct{}{},
		connected: time.Now(), closed: make(chan struct{}), cancel: cancel,
	}
	s.lastSeen.Store(time.Now().UnixNano())
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.banned[s.banKey()] || (!p.Trusted && e.caughtAt[hostOf(p.RemoteAddr)] >= addrBanAfter) {
		return nil
	}
	// WELCOME is queued before the session can be seen: from then on the
	// dispatcher may hand it tasks and a failing job may cancel them, and
	// the worker must hear WELCOME first.
	s.send(wp.Encode(&wp.Welcome{
		WorkerID: s.id, HeartbeatInterval: e.cfg.HeartbeatInterval,
		MaxResultBytes: uint32(e.cfg.MaxTaskBytes), PrefetchPerSlot: uint16(e.cfg.PrefetchPerSlot + 1),
	}))
	e.sessions[s.id] = s
	return s
}

// endSession forgets a session and returns every task it held.
func (e *Engine) endSession(s *session) {
	s.close("")
	e.mu.Lock()
	delete(e.sessions, s.id)
	copies := make([]*taskCopy, 0, len(s.copies))
	for _, c := range s.copies {
		copies = append(copies, c)
	}
	e.mu.Unlock()
	if len(copies) > 0 {
		e.submitReq(commitReq{kind: reqRelease, copies: copies})
	}
	e.log.Info("worker left", "worker", s.id, "tasks_done", s.done.Load(), "returned", len(copies))
}

// close ends the session; the read loop returns and endSession cleans up.
func (s *session) close(reason string) {
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.cancel != nil {
			s.cancel()
		}
		s.t.Close(reason)
	})
}

// send queues a frame for the worker. A writer goroutine runs only while
// frames wait, so an idle worker costs no goroutine of its own. A worker
// whose queue is full cannot keep up and is dropped.
func (s *session) send(frame []byte) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	select {
	case <-s.closed:
		return
	default:
	}
	if len(s.out) >= maxOutFrames+s.maxCredit {
		s.e.log.Warn("worker too slow to take its frames", "worker", s.id)
		go s.close("too slow")
		return
	}
	s.out = append(s.out, frame)
	if !s.writing {
		s.writing = true
		go s.flush()
	}
}

// flush writes queued frames until none is left, each within sendTimeout.
func (s *session) flush() {
	for {
		s.outMu.Lock()
		if len(s.out) == 0 {
			s.writing = false
			s.out = nil
			s.outMu.Unlock()
			return
		}
		f := s.out[0]
		s.out[0] = nil
		s.out = s.out[1:]
		s.outMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
		err := s.t.Send(ctx, f)
		cancel()
		if err != nil {
			s.close("write failed")
			s.outMu.Lock()
			s.writing, s.out = false, nil
			s.outMu.Unlock()
			return
		}
	}
}

// cancelTask tells the worker to abort one copy.
func (s *session) cancelTask(id uint64) {
	s.e.mu.Lock()
	if c, ok := s.copies[id]; ok {
		s.e.dropCopyLocked(c)
	}
	delete(s.e.copies, id)
	s.cancelled[id] = struct{}{}
	if len(s.cancelled) > 10000 {
		clear(s.cancelled)
	}
	s.e.mu.Unlock()
	s.send(wp.Encode(&wp.Cancel{TaskIDs: []uint64{id}}))
	s.e.kick()
}

// readLoop routes the worker's frames through one switch.
func (s *session) readLoop(ctx context.Context) error {
	for {
		frame, err := s.t.Recv(ctx)
		if err != nil {
			return nil // the worker left, or we closed it
		}
		s.lastSeen.Store(time.Now().UnixNano())
		s.bytesIn.Add(int64(len(frame)))
		f, err := wp.DecodeLimit(frame, s.e.maxFrame())
		if err != nil {
			return s.violation(ctx, err)
		}
		switch f := f.(type) {
		case *wp.Results:
			err = s.results(f)
		case *wp.Failures:
			err = s.failures(f)
		case *wp.Heartbeat:
			s.progress(f.Progress)
		default:
			err = fmt.Errorf("%w: a worker may not send %s", wp.ErrInvalid, f.Type())
		}
		if err != nil {
			return s.violation(ctx, err)
		}
	}
}

func (s *session) violation(ctx context.Context, err error) error {
	s.e.log.Warn("worker broke the protocol", "worker", s.id, "err", err)
	sendError(ctx, s.t, err)
	s.close(err.Error())
	return err
}

// take removes a copy the worker answers for. It returns nil for a copy the
// worker does not hold: one cancelled meanwhile is ignored quietly, anything
// else counts as abuse, and too much abuse ends the session.
func (s *session) take(id uint64) (*taskCopy, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := s.copies[id]
	if !ok {
		if _, was := s.cancelled[id]; was {
			delete(s.cancelled, id)
			return nil, nil
		}
		s.abuse++
		e.log.Warn("worker answered for a task it does not hold", "worker", s.id, "task", id)
		if s.abuse > maxAbuse {
			return nil, fmt.Errorf("%w: %d answers for tasks it does not hold", wp.ErrInvalid, s.abuse)
		}
		return nil, nil
	}
	e.dropCopyLocked(c)
	return c, nil
}

func (s *session) results(f *wp.Results) error {
	for i := range f.Results {
		r := &f.Results[i]
		c, err := s.take(r.TaskID)
		if err != nil {
			return err
		}
		if c == nil {
			continue
		}
		t := c.task
		phase := wp.PhaseMap
		if t.phase == PhaseReduce {
			phase = wp.PhaseReduce
		}
		size := 0
		for _, p := range r.Partitions {
			size += len(p)
		}
		if err := wp.CheckPartitions(phase, t.job.partitions(), r.Partitions); err != nil || size > s.e.cfg.MaxTaskBytes {
			if err == nil {
				err = fmt.Errorf("result of %d bytes exceeds %d", size, s.e.cfg.MaxTaskBytes)
			}
			s.addAbuse()
			s.e.submitReq(commitReq{kind: reqFailure, copies: []*taskCopy{c}, failKind: wp.FailureJob, message: "worker " + s.id + " sent a malformed result: " + err.Error()})
			continue
		}
		s.done.Add(1)
		s.e.submitReq(commitReq{kind: reqResult, copies: []*taskCopy{c}, result: r, worker: s.id})
	}
	s.e.kick()
	return nil
}

// progress keeps what a heartbeat says of the session's running copies.
func (s *session) progress(ps []wp.Progress) {
	if len(ps) == 0 {
		return
	}
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	for _, p := range ps {
		if c, ok := s.copies[p.TaskID]; ok {
			c.percent = p.Percent
		}
	}
}

// addAbuse counts a frame that broke the rules without ending the session.
func (s *session) addAbuse() {
	s.e.mu.Lock()
	s.abuse++
	s.e.mu.Unlock()
}

func (s *session) failures(f *wp.Failures) error {
	for _, fl := range f.Failures {
		c, err := s.take(fl.TaskID)
		if err != nil {
			return err
		}
		if c == nil {
			continue
		}
		s.failed.Add(1)
		// A result too large to take is too large on any worker: the task
		// fails for good, at once, when a worker we trust says so (an
		// anonymous one could say it of any task).
		final := fl.Kind == wp.FailureTooLarge && s.peer.Trusted
		s.e.submitReq(commitReq{kind: reqFailure, copies: []*taskCopy{c}, message: fl.Message, failKind: fl.Kind, final: final})
	}
	s.e.kick()
	return nil
}

// Workers lists the connected workers, then those flagged for wrong results
// (no longer connected).
func (e *Engine) Workers() []WorkerInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]WorkerInfo, 0, len(e.sessions)+len(e.flagged))
	for _, s := range e.sessions {
		if !s.standing.Flagged {
			out = append(out, s.infoLocked())
		}
	}
	banned := map[string]bool{}
	for _, f := range e.remote.flagged {
		banned[f.key] = true
	}
	for _, w := range e.remote.workers {
		// Another server's list is up to a round old: a worker flagged
		// since is listed as flagged only.
		if key := w.RemoteAddr + "|" + w.Name + "|" + w.UserAgent; !banned[key] && !e.banned[key] {
			out = append(out, w)
		}
	}
	mine := map[string]bool{}
	for _, w := range e.flagged {
		mine[w.RemoteAddr+"|"+w.Name+"|"+w.UserAgent] = true
	}
	out = append(out, e.flagged...)
	for _, f := range e.remote.flagged {
		if !mine[f.key] {
			out = append(out, f.info)
		}
	}
	return out
}

// infoLocked describes the session. e.mu held.
func (s *session) infoLocked() WorkerInfo {
	wi := WorkerInfo{
		ID: s.id, Kind: s.hello.Kind.String(), Name: s.hello.Name, UserAgent: s.hello.UserAgent,
		RemoteAddr: s.peer.RemoteAddr, Slots: s.slots, Running: []api.RunningTask{},
		TasksDone: s.done.Load(), TasksFailed: s.failed.Load(), BytesIn: s.bytesIn.Load(),
		Connected: s.connected, LastSeen: time.Unix(0, s.lastSeen.Load()),
		Trusted: s.peer.Trusted, Standing: s.standing, Flagged: s.standing.Flagged, Server: s.e.cfg.Server,
	}
	wi.Standing.Probation = !s.peer.Trusted && s.standing.Agreed < probation
	wi.Standing.Contradicted, wi.Standing.Throttled = int64(s.contradicted), s.throttled
	for _, c := range s.copies {
		t := c.task
		wi.Running = append(wi.Running, api.RunningTask{
			Copy: c.id, Job: t.job.rec.ID, Phase: t.phase, Task: t.lease.Message.ID, Attempt: t.lease.Message.Attempts + 1,
			Check: c.check, Sent: c.sent, Percent: int(c.percent),
		})
	}
	slices.SortFunc(wi.Running, func(a, b api.RunningTask) int { return cmp.Compare(a.Copy, b.Copy) })
	return wi
}

// banKey identifies a worker across reconnections, as well as anonymous
// workers can be: its address, its self-chosen name and its user agent.
// (Tabs of one browser on one address share it.)
func (s *session) banKey() string { return banKeyOf(s.peer, &s.hello) }

func banKeyOf(p Peer, h *wp.Hello) string { return p.RemoteAddr + "|" + h.Name + "|" + h.UserAgent }

func encodeCancel(ids ...uint64) []byte { return wp.Encode(&wp.Cancel{TaskIDs: ids}) }

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}
