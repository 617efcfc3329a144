package buntstore

import (
	"sync"
	"time"
)

// loop runs a function on a clock, on a goroutine of its own, until it is
// closed: the store's background upkeep (the fsync of everysec, the file
// rewrite).
type loop struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoop calls tick every interval and, once closed, last (if not nil)
// a final time.
func startLoop(every time.Duration, tick, last func()) *loop {
	l := &loop{stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				if last != nil {
					last()
				}
				return
			case <-t.C:
				tick()
			}
		}
	}()
	return l
}

// close stops the loop and waits for it.
func (l *loop) close() {
	close(l.stop)
	l.wg.Wait()
}
