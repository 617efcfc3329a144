package worker

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// outbox holds finished tasks until the writer sends them. Slots add to it
// without waiting; it is bounded by the tasks the session accepted, since
// each yields one entry at most.
type outbox struct {
	mu       sync.Mutex
	results  []workerproto.Result
	failures []workerproto.Failure
	wake     chan struct{} // capacity 1: "something to send"
}

func (o *outbox) done(r workerproto.Result) {
	o.mu.Lock()
	o.results = append(o.results, r)
	o.mu.Unlock()
	o.notify()
}

func (o *outbox) fail(f workerproto.Failure) {
	o.mu.Lock()
	o.failures = append(o.failures, f)
	o.mu.Unlock()
	o.notify()
}

func (o *outbox) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take moves up to one batch of results (MaxBatchResults, about
// MaxBatchBytes, at least one) into rs and up to MaxBatchFailures failures
// into fs.
func (o *outbox) take(rs []workerproto.Result, fs []workerproto.Failure) ([]workerproto.Result, []workerproto.Failure) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, size := 0, 0
	for n < len(o.results) && n < MaxBatchResults && (n == 0 || size+o.results[n].Size() <= MaxBatchBytes) {
		size += o.results[n].Size()
		n++
	}
	rs = append(rs, o.results[:n]...)
	rest := copy(o.results, o.results[n:])
	clear(o.results[rest:])
	o.results = o.results[:rest]
	m := min(len(o.failures), MaxBatchFailures)
	fs = append(fs, o.failures[:m]...)
	rest = copy(o.failures, o.failures[m:])
	clear(o.failures[rest:])
	o.failures = o.failures[:rest]
	return rs, fs
}

// write sends what the slots finish, batched, and a heartbeat every
// interval, until the session ends or a send fails.
func (s *session) write(ctx context.Context) error {
	interval := s.welcome.HeartbeatInterval
	if interval <= 0 {
		interval = DefaultHeartbeat
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var (
		results  workerproto.Results
		failures workerproto.Failures
	)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := s.send(ctx, s.heartbeat()); err != nil {
				return err
			}
			continue
		case <-s.out.wake:
		}
		// Let the slots that are about to finish run first, so that their
		// results go in this frame: a frame a result, one write each, is
		// most of what a short task costs. Where nothing else can run, as
		// on an idle worker, this returns at once.
		runtime.Gosched()
		// Send until the outbox is empty: whatever finished while a frame
		// was on its way goes in the next batch.
		for {
			results.Results, failures.Failures = s.out.take(results.Results[:0], failures.Failures[:0])
			if len(results.Results) == 0 && len(failures.Failures) == 0 {
				break
			}
			if len(failures.Failures) > 0 {
				if err := s.send(ctx, &failures); err != nil {
					return err
				}
				clear(failures.Failures)
			}
			if len(results.Results) > 0 {
				if err := s.send(ctx, &results); err != nil {
					return err
				}
				clear(results.Results) // let the partitions go
			}
		}
	}
}

// send encodes f and sends it within the write timeout. Every frame gets its
// own buffer: a transport may hold on to a frame after Send returns (an
// in-process pipe hands it to the server as is).
func (s *session) send(ctx context.Context, f workerproto.Frame) error {
	frame := workerproto.Encode(f)
	ctx, cancel := context.WithTimeout(ctx, s.o.WriteTimeout)
	err := s.t.Send(ctx, frame)
	cancel()
	if err != nil {
		return fmt.Errorf("send %s: %w", f.Type(), err)
	}
	return nil
}
