package worker

import (
	"math/rand/v2"
	"time"
)

// backoff is an exponential reconnection delay: min, doubling up to max,
// each wait drawn uniformly from its upper half so that workers dropped
// together do not reconnect together.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// next returns the next wait.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

// reset starts again from min.
func (b *backoff) reset() { b.cur = 0 }
