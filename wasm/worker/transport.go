package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Transport carries worker-protocol frames (package workerproto) between a
// worker and the server: a WebSocket for a remote worker, a Pipe for one in
// the server's process. It has the method set of the server's
// engine.Transport, so either end of a Pipe serves as one.
//
// Send and Recv may be called concurrently with each other, but neither
// concurrently with itself. The worker never reuses a frame it sent, so a
// transport may keep it; Recv returns a frame the caller owns (decoded tasks
// alias it). Close ends the connection for both sides; pending and later
// calls fail.
type Transport interface {
	Send(ctx context.Context, frame []byte) error
	Recv(ctx context.Context) ([]byte, error)
	Close(reason string) error
}

// ErrClosed is returned by a Pipe end's Send and Recv once either end is
// closed.
var ErrClosed = errors.New("transport closed")

// DefaultPipeFrames is how many frames a Pipe buffers in each direction
// before Send blocks.
const DefaultPipeFrames = 64

// Pipe returns the two ends of an in-memory transport: what one end sends
// the other receives, in order. Each direction buffers DefaultPipeFrames
// frames; Send copies the frame. Closing either end closes both: Recv then
// returns the frames already buffered and then ErrClosed with the reason.
func Pipe() (Transport, Transport) {
	sh := &pipeShared{done: make(chan struct{})}
	ab := make(chan []byte, DefaultPipeFrames)
	ba := make(chan []byte, DefaultPipeFrames)
	return &pipeEnd{in: ba, out: ab, sh: sh}, &pipeEnd{in: ab, out: ba, sh: sh}
}

type pipeShared struct {
	once   sync.Once
	done   chan struct{}
	reason string
}

func (s *pipeShared) err() error { return fmt.Errorf("%w: %s", ErrClosed, s.reason) }

type pipeEnd struct {
	in  <-chan []byte
	out chan<- []byte
	sh  *pipeShared
}

func (p *pipeEnd) Send(ctx context.Context, frame []byte) error {
	select {
	case <-p.sh.done:
		return p.sh.err()
	default:
	}
	select {
	case p.out <- append([]byte(nil), frame...):
		return nil
	case <-p.sh.done:
		return p.sh.err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipeEnd) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.in:
		return b, nil
	case <-p.sh.done:
		select { // deliver what was sent before the close
		case b := <-p.in:
			return b, nil
		default:
			return nil, p.sh.err()
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pipeEnd) Close(reason string) error {
	p.sh.once.Do(func() {
		p.sh.reason = reason
		close(p.sh.done)
	})
	return nil
}
