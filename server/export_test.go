package server

import "time"

// SetLocalHandshakeTimeout shortens the in-process worker's handshake
// time-out for a test and returns a function that restores it.
func SetLocalHandshakeTimeout(d time.Duration) (restore func()) {
	old := localHandshakeTimeout
	localHandshakeTimeout = d
	return func() { localHandshakeTimeout = old }
}
