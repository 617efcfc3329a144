package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// OpenRetrying opens n bytes of an object from off (n < 0: to its end) as
// Open does, but rides out a store that is briefly unreachable (a restart,
// a network fault): opening, and every read, is tried again with backoff
// for up to patience, going on from the offset reached. Only what may pass
// is retried: a missing object, a bad range or key and a damaged object
// fail at once.
func OpenRetrying(ctx context.Context, s Store, key string, off, n int64, patience time.Duration) (io.ReadCloser, error) {
	r := &retryReader{ctx: ctx, s: s, key: key, off: off, end: -1, patience: patience}
	if n >= 0 {
		r.end = off + n
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

type retryReader struct {
	ctx      context.Context
	s        Store
	key      string
	off, end int64
	patience time.Duration
	r        io.ReadCloser
}

// Permanent reports whether an error of a Store would recur if tried
// again.
func Permanent(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrRange) || errors.Is(err, ErrInvalid) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}

// ErrCorrupt is an object whose stored form is damaged.
var ErrCorrupt = errors.New("blob corrupt")

// open opens the rest of the range, trying again while errors may pass.
func (r *retryReader) open() error {
	deadline := time.Now().Add(r.patience)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		n := int64(-1)
		if r.end >= 0 {
			n = r.end - r.off
		}
		rc, err := r.s.Open(r.ctx, r.key, r.off, n)
		if err == nil {
			r.r = rc
			return nil
		}
		if Permanent(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-r.ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func (r *retryReader) Read(p []byte) (int, error) {
	if r.end >= 0 && r.off >= r.end {
		return 0, io.EOF
	}
	if r.r == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	k, err := r.r.Read(p)
	r.off += int64(k)
	if err == nil || errors.Is(err, io.EOF) && r.end < 0 || Permanent(err) {
		return k, err
	}
	if errors.Is(err, io.EOF) && r.off >= r.end {
		return k, err
	}
	// A read that failed on the way: open again from where it stopped.
	r.r.Close()
	r.r = nil
	if k > 0 {
		return k, nil
	}
	if err := r.open(); err != nil {
		return 0, err
	}
	return 0, nil
}

func (r *retryReader) Close() error {
	if r.r == nil {
		return nil
	}
	return r.r.Close()
}
