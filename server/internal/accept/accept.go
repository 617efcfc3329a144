// Package accept is the accept loop of the server's listeners.
package accept

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// Loop accepts connections from ln and hands each to serve until ln is
// closed or stop is done. A failing Accept (out of file descriptors, say)
// is retried after a pause that doubles from 5 ms up to 1 s, as net/http's
// does, and is logged under msg.
func Loop(ln net.Listener, stop <-chan struct{}, log *slog.Logger, msg string, serve func(net.Conn)) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if stopped(stop) || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			log.Warn(msg, "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-stop:
				return
			}
			continue
		}
		delay = 0
		serve(c)
	}
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
