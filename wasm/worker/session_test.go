package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// peer is the test's side of a session: it plays the server with
// workerproto frames over a Pipe.
type peer struct {
	t  testing.TB
	tr Transport
}

func (p peer) send(f workerproto.Frame) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := p.tr.Send(ctx, workerproto.Encode(f)); err != nil {
		p.t.Fatalf("send %s: %v", f.Type(), err)
	}
}

func (p peer) recv() workerproto.Frame {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	b, err := p.tr.Recv(ctx)
	if err != nil {
		p.t.Fatalf("recv: %v", err)
	}
	f, err := workerproto.Decode(b)
	if err != nil {
		p.t.Fatalf("worker sent a bad frame: %v", err)
	}
	if !f.Type().FromWorker() {
		p.t.Fatalf("worker sent %s", f.Type())
	}
	return f
}

// handshake expects HELLO and answers WELCOME.
func (p peer) handshake(w workerproto.Welcome) *workerproto.Hello {
	p.t.Helper()
	h, ok := p.recv().(*workerproto.Hello)
	if !ok {
		p.t.Fatal("first frame is not HELLO")
	}
	p.send(&w)
	return h
}

// outcomes gathers what a worker sent.
type outcomes struct {
	results  map[uint64]workerproto.Result
	failures map[uint64]workerproto.Failure
	beat     *workerproto.Heartbeat // the last heartbeat
}

// collect receives frames until done holds.
func (p peer) collect(done func(*outcomes) bool) *outcomes {
	p.t.Helper()
	o := &outcomes{results: map[uint64]workerproto.Result{}, failures: map[uint64]workerproto.Failure{}}
	for !done(o) {
		switch f := p.recv().(type) {
		case *workerproto.Results:
			for _, r := range f.Results {
				o.results[r.TaskID] = r
			}
		case *workerproto.Failures:
			for _, x := range f.Failures {
				o.failures[x.TaskID] = x
			}
		case *workerproto.Heartbeat:
			o.beat = f
		default:
			p.t.Fatalf("unexpected %s", f.Type())
		}
	}
	return o
}

// running reports whether the last heartbeat lists the task.
func (o *outcomes) running(id uint64) bool {
	if o.beat == nil {
		return false
	}
	for _, pr := range o.beat.Progress {
		if pr.TaskID == id {
			return true
		}
	}
	return false
}

// idle reports whether the last heartbeat shows every slot free.
func (o *outcomes) idle(slots uint16) bool {
	return o.beat != nil && o.beat.FreeSlots == slots && len(o.beat.Progress) == 0
}

// startWorker runs a worker whose every dial hands the test a new peer.
func startWorker(t testing.TB, opts Options) <-chan peer {
	t.Helper()
	conns := make(chan peer, 4)
	opts.Dial = func(ctx context.Context) (Transport, error) {
		a, b := Pipe()
		conns <- peer{t: t, tr: b}
		return a, nil
	}
	runWorker(t, opts)
	return conns
}

// runWorker runs a worker and stops it when the test ends.
func runWorker(t testing.TB, opts Options) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(waitFor):
			t.Error("Run did not return after its context ended")
		}
	})
}

func next(t testing.TB, conns <-chan peer) peer {
	t.Helper()
	select {
	case p := <-conns:
		return p
	case <-time.After(waitFor):
		t.Fatal("worker did not connect")
		return peer{}
	}
}

var welcome = workerproto.Welcome{WorkerID: "w1", HeartbeatInterval: 20 * time.Millisecond, MaxResultBytes: 1 << 20, PrefetchPerSlot: 2}

func TestSession(t *testing.T) {
	r, shas := compiled(t, wordcount, panics, loop)
	wc, pan, lp := shas[0], shas[1], shas[2]
	task := func(id uint64, module string, input string) workerproto.Task {
		return workerproto.Task{ID: id, Job: "j", Phase: workerproto.PhaseMap, Module: module, Reducers: 2, Input: []byte(input)}
	}
	conns := startWorker(t, Options{Runner: r, Slots: 2, Name: "t1", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	p := next(t, conns)
	h := p.handshake(welcome)
	if h.Kind != workerproto.KindNative || h.Slots != 2 || h.Name != "t1" || h.Protocol != workerproto.ProtocolVersion ||
		!strings.HasPrefix(h.UserAgent, "tabreduce-worker") {
		t.Fatalf("HELLO %+v", h)
	}

	// A task that never ends shows in heartbeats while the others run.
	p.send(&workerproto.Tasks{Tasks: []workerproto.Task{task(4, lp, "x\n")}})
	p.collect(func(o *outcomes) bool { return o.running(4) && o.beat.FreeSlots == 1 })

	combine := task(1, wc, "b a b\nc a b\n")
	combine.Flags = workerproto.FlagCombine
	reduce := workerproto.Task{ID: 2, Job: "j", Phase: workerproto.PhaseReduce, Module: wc, Reducers: 2, Input: abi.EncodeGroups([]abi.Pair{
		{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("a"), Value: []byte("2")}, {Key: []byte("b"), Value: []byte("5")}})}
	p.send(&workerproto.Tasks{Tasks: []workerproto.Task{combine, reduce, task(3, pan, "panic\n")}})
	o := p.collect(func(o *outcomes) bool { return len(o.results) == 2 && len(o.failures) == 1 })
	res := o.results[1]
	if err := workerproto.CheckPartitions(workerproto.PhaseMap, 2, res.Partitions); err != nil {
		t.Fatal(err)
	}
	if got := pairsOf(res.Partitions); got != "a=2 b=3 c=1" {
		t.Fatalf("map output %s", got)
	}
	if res.Counters.Get("words") != 6 || res.Elapsed <= 0 {
		t.Fatalf("map counters %v, elapsed %v", res.Counters, res.Elapsed)
	}
	if got := pairsOf(o.results[2].Partitions); got != "a=3 b=5" || len(o.results[2].Partitions) != 1 {
		t.Fatalf("reduce output %s", got)
	}
	if f := o.failures[3]; f.Kind != workerproto.FailureJob || !strings.Contains(f.Message, "nil map") {
		t.Fatalf("failure %+v", f)
	}

	// CANCEL frees the slot and nothing is sent for the task; unknown ids
	// are ignored.
	p.send(&workerproto.Cancel{TaskIDs: []uint64{4, 999}})
	o = p.collect(func(o *outcomes) bool { return o.idle(2) })
	if _, ok := o.results[4]; ok {
		t.Fatal("result for a cancelled task")
	}
	if _, ok := o.failures[4]; ok {
		t.Fatal("failure for a cancelled task")
	}

	// A task's timeout ends it as a timeout failure. The slots' timers serve
	// task after task (four on two slots), and a task that ends in time
	// leaves its slot's timer to the next.
	timed := func(id uint64, module, input string, timeout time.Duration) workerproto.Task {
		tt := task(id, module, input)
		tt.Timeout = timeout
		return tt
	}
	p.send(&workerproto.Tasks{Tasks: []workerproto.Task{timed(5, wc, "in time\n", waitFor),
		timed(6, lp, "x\n", 50*time.Millisecond), timed(7, lp, "x\n", 50*time.Millisecond), timed(8, lp, "x\n", 50*time.Millisecond)}})
	o = p.collect(func(o *outcomes) bool { return len(o.results)+len(o.failures) == 4 })
	if got := pairsOf(o.results[5].Partitions); got != "in=1 time=1" {
		t.Fatalf("task in time: output %q, failures %+v", got, o.failures)
	}
	for id := uint64(6); id <= 8; id++ {
		if f, ok := o.failures[id]; !ok || f.Kind != workerproto.FailureTimeout {
			t.Fatalf("task %d past its timeout: %+v", id, f)
		}
	}

	// Tasks beyond the prefetch fail at once instead of blocking the reader.
	var flood []workerproto.Task
	var ids []uint64
	for id := uint64(10); id < 18; id++ {
		flood = append(flood, task(id, lp, "x\n"))
		ids = append(ids, id)
	}
	p.send(&workerproto.Tasks{Tasks: flood})
	o = p.collect(func(o *outcomes) bool { return len(o.failures) == 4 && o.beat != nil && o.beat.FreeSlots == 0 })
	// The credit of cancelled tasks can be reused at once, even though
	// they still sit in the worker's queue.
	p.send(&workerproto.Cancel{TaskIDs: ids})
	var again []uint64
	for id := uint64(30); id < 34; id++ {
		again = append(again, id)
	}
	p.send(&workerproto.Tasks{Tasks: []workerproto.Task{task(30, lp, "x\n"), task(31, lp, "x\n"), task(32, lp, "x\n"), task(33, lp, "x\n")}})
	p.collect(func(m *outcomes) bool { return m.running(30) || m.running(31) })
	p.send(&workerproto.Cancel{TaskIDs: again})
	more := p.collect(func(m *outcomes) bool { return m.idle(2) })
	for id, f := range more.failures {
		o.failures[id] = f
	}
	if n := len(o.failures); n != 4 {
		t.Fatalf("%d tasks refused of 8 with 2 slots × prefetch 2, want 4", n)
	}
	for _, f := range o.failures {
		if f.Kind != workerproto.FailureInternal || !strings.Contains(f.Message, "over capacity") {
			t.Fatalf("refusal %+v", f)
		}
	}
	if len(o.results)+len(more.results) > 0 {
		t.Fatal("results for cancelled tasks")
	}

	// The server drops the connection: the worker comes back, once the
	// session's running task has ended with it.
	p.send(&workerproto.Tasks{Tasks: []workerproto.Task{task(21, lp, "x\n")}})
	p.collect(func(o *outcomes) bool { return o.running(21) })
	p.tr.Close("server restarting")
	p = next(t, conns)
	p.handshake(welcome)
	p.send(&workerproto.Tasks{Tasks: []workerproto.Task{task(20, wc, "again\n")}})
	if o := p.collect(func(o *outcomes) bool { return len(o.results) == 1 }); pairsOf(o.results[20].Partitions) != "again=1" {
		t.Fatalf("after reconnecting: %+v", o.results)
	}

	// ERROR ends the session, and a refused handshake is retried.
	p.send(&workerproto.Error{Code: workerproto.CodeInvalid, Message: "go away"})
	p = next(t, conns)
	p.recv()
	p.send(&workerproto.Error{Code: workerproto.CodeUnavailable, Message: "shutting down"})
	p = next(t, conns)
	p.handshake(welcome)
}

// pairsOf renders pair streams as "k=v k=v" in stream order.
func pairsOf(streams [][]byte) string {
	var out []string
	for _, s := range streams {
		pairs, err := abi.DecodePairs(s)
		if err != nil {
			return err.Error()
		}
		for _, p := range pairs {
			out = append(out, fmt.Sprintf("%s=%s", p.Key, p.Value))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestHandshakeErrors: a worker whose server answers HELLO with anything
// but WELCOME gives up on the connection and dials again.
func TestHandshakeErrors(t *testing.T) {
	r := wasmtest.Runner(t)
	conns := startWorker(t, Options{Runner: r, Slots: 1, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		HandshakeTimeout: 100 * time.Millisecond})
	tests := []struct {
		name  string
		reply func(peer)
	}{
		{"tasks instead of welcome", func(p peer) { p.send(&workerproto.Tasks{}) }},
		{"garbage", func(p peer) { p.tr.Send(context.Background(), []byte{1}) }},
		{"silence", func(p peer) {}},
		{"closed", func(p peer) { p.tr.Close("no") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := next(t, conns)
			if _, ok := p.recv().(*workerproto.Hello); !ok {
				t.Fatal("no HELLO")
			}
			tt.reply(p)
		})
	}
	next(t, conns).handshake(welcome)
}
