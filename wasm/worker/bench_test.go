package worker

import (
	"runtime"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// BenchmarkSessionNoop pushes no-op map tasks (the noop job, R = 4)
// through a whole session over a Pipe, the test playing a server that keeps
// every slot's prefetch full, and reports tasks/s: the worker's own
// per-task cost (decode, queue, runner call, partition, batch, encode).
func BenchmarkSessionNoop(b *testing.B) {
	r, shas := compiled(b, noop)
	slots := runtime.GOMAXPROCS(0)
	const prefetch = 4
	conns := startWorker(b, Options{Runner: r, Slots: slots})
	p := next(b, conns)
	w := welcome
	w.PrefetchPerSlot, w.HeartbeatInterval = prefetch, time.Second
	p.handshake(w)
	input := []byte("one line\n")
	window := slots * prefetch
	var nextID uint64
	batch := func(n int) *workerproto.Tasks {
		ts := make([]workerproto.Task, n)
		for i := range ts {
			nextID++
			ts[i] = workerproto.Task{ID: nextID, Job: "bench", Phase: workerproto.PhaseMap, Module: shas[0], Reducers: 4, Input: input}
		}
		return &workerproto.Tasks{Tasks: ts}
	}
	b.ResetTimer()
	start := time.Now()
	sent, done := 0, 0
	for done < b.N {
		if n := min(window-(sent-done), b.N-sent); n > 0 {
			p.send(batch(n))
			sent += n
		}
		switch f := p.recv().(type) {
		case *workerproto.Results:
			done += len(f.Results)
		case *workerproto.Failures:
			b.Fatalf("failures: %+v", f.Failures)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
}
