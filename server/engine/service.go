package engine

import (
	"context"
	"time"
)

// service is one of the engine's background loops (the dispatcher, the
// committer, the watchdog, the retention sweeper): each runs on its own
// goroutine until stopped, and stop waits for it, so the engine's Close
// ends them in an order of its choosing.
type service struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
}

// startService runs run on a goroutine of its own with a context that stop
// cancels.
func startService(parent context.Context, name string, run func(ctx context.Context)) *service {
	ctx, cancel := context.WithCancel(parent)
	s := &service{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		run(ctx)
	}()
	return s
}

// stop cancels the service and waits for its goroutine to return. A nil
// service is stopped already.
func (s *service) stop() {
	if s == nil {
		return
	}
	s.cancel()
	<-s.done
}

// every calls fn(now) each interval until ctx ends: the body of a service
// that runs on a clock.
func every(ctx context.Context, interval time.Duration, fn func(now time.Time)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fn(now)
		}
	}
}
