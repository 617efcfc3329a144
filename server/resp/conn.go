package resp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/kv"
)

// errInterrupted ends a read that the server or a blocked command cut short.
var errInterrupted = errors.New("read interrupted")

// readMode says which deadline a connection's next read gets.
type readMode uint8

const (
	readIdle    readMode = iota // waiting for a request: IdleTimeout
	readRequest                 // inside a request: ReadTimeout
	readForever                 // subscribed or blocked: no deadline
)

// connReader is the connection under the buffered reader: it arms the
// read deadline the mode asks for before every read of the socket (which
// happens only when the buffer is empty), and it can be interrupted.
type connReader struct {
	nc  net.Conn
	lim *Limits
	// flush writes the replies waiting to go out: a read that has to wait
	// for the client must not keep the answers it is waiting for.
	flush func() error

	mu          sync.Mutex
	mode        readMode
	interrupted bool
}

// Read flushes the replies waiting to go out, arms the mode's deadline and
// reads the socket.
func (r *connReader) Read(p []byte) (int, error) {
	if err := r.flush(); err != nil {
		return 0, err
	}
	r.mu.Lock()
	if r.interrupted {
		r.mu.Unlock()
		return 0, errInterrupted
	}
	var deadline time.Time
	switch r.mode {
	case readIdle:
		deadline = time.Now().Add(r.lim.IdleTimeout)
	case readRequest:
		deadline = time.Now().Add(r.lim.ReadTimeout)
	}
	r.nc.SetReadDeadline(deadline)
	r.mu.Unlock()
	return r.nc.Read(p)
}

func (r *connReader) setMode(m readMode) {
	r.mu.Lock()
	r.mode = m
	r.mu.Unlock()
}

// interrupt makes the read in progress, and every later one, fail.
func (r *connReader) interrupt() {
	r.mu.Lock()
	r.interrupted = true
	r.nc.SetReadDeadline(time.Now())
	r.mu.Unlock()
}

// resume undoes interrupt, unless ctx (the server's) is done: a server
// that is closing has interrupted the connection for good.
func (r *connReader) resume(ctx context.Context) {
	r.mu.Lock()
	if ctx.Err() == nil {
		r.interrupted = false
	}
	r.mu.Unlock()
}

// conn is one client connection. Its serve loop reads requests and runs
// them in order; replies are buffered and flushed once the input holds no
// more to read (so a pipeline is answered in one write).
type conn struct {
	srv  *Server
	nc   net.Conn
	host string
	cr   *connReader
	br   *bufio.Reader
	r    reader

	// wmu guards w: the serve loop and the pub/sub forwarders write.
	// locked says the serve loop holds it (only the serve loop reads it).
	wmu    sync.Mutex
	locked bool
	w      writer

	id       int64
	peek     *peeker // parses the requests a batch may take (batch.go)
	args     []kv.Value
	authed   bool
	quitting bool // the command asks to close the connection
	name     string
	subs     map[string]*subscription

	ctx    context.Context
	cancel context.CancelFunc
	fwd    sync.WaitGroup // pub/sub forwarders
}

func newConn(s *Server, nc net.Conn, host string, id int64) *conn {
	c := &conn{srv: s, nc: nc, host: host, id: id, authed: s.cfg.Token == "", subs: map[string]*subscription{}}
	c.cr = &connReader{nc: nc, lim: &s.cfg.Limits, flush: c.flushPending}
	c.br = bufio.NewReaderSize(c.cr, 16<<10)
	c.r = reader{br: c.br, lim: &s.cfg.Limits}
	c.w = writer{bw: bufio.NewWriterSize(nc, 16<<10)}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	return c
}

func (c *conn) interrupt() { c.cr.interrupt() }

// serve runs the connection until the client leaves, QUITs, sends a
// malformed request, or the server closes.
func (c *conn) serve() {
	defer c.close()
	defer func() {
		// A bug in a command must not take the server down: the client
		// hears of it and loses its connection, the log keeps the stack.
		if v := recover(); v != nil {
			c.srv.log.Error("resp command panicked", "remote", c.nc.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			if !c.locked {
				c.lock()
			}
			c.w.bw.Reset(c.nc) // what the command had written is half a reply
			c.w.error("ERR", string(api.CodeInternal)+": internal error")
			c.flushLocked()
			c.unlock()
		}
	}()
	for {
		if len(c.subs) == 0 {
			c.cr.setMode(readIdle)
		}
		args, dialect, err := c.readRequest()
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				c.lock()
				c.w.error("ERR", err.Error())
				c.flushLocked()
				c.unlock()
			} else if !isGone(err) {
				c.srv.log.Debug("resp read", "remote", c.nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		if len(args) == 0 {
			continue
		}
		c.lock()
		if dialect {
			c.w.dialect = seed // sticky: the client speaks the seed's dialect
		}
		if c.exec(args) {
			c.flushLocked()
			c.unlock()
			return
		}
		c.unlock()
		c.release()
	}
}

// keepBuffer bounds what a connection keeps of its largest request's
// buffers between requests, so that idle connections stay small.
const keepBuffer = 64 << 10

// release drops the request's values, and the buffers a large request grew.
func (c *conn) release() {
	clear(c.args)
	if cap(c.args)*valueCost > keepBuffer {
		c.args = nil
	}
	if cap(c.r.scratch) > keepBuffer {
		c.r.scratch = nil
	}
}

// lock and unlock take and give up wmu from the serve loop.
func (c *conn) lock() {
	c.wmu.Lock()
	c.locked = true
}

func (c *conn) unlock() {
	c.locked = false
	c.wmu.Unlock()
}

// readRequest reads the next request, arming the request deadline once
// its first byte is in.
func (c *conn) readRequest() ([]kv.Value, bool, error) {
	if len(c.subs) > 0 {
		c.cr.setMode(readForever)
	} else if _, err := c.br.Peek(1); err != nil {
		return nil, false, err
	}
	if len(c.subs) == 0 {
		c.cr.setMode(readRequest)
	}
	args, dialect, err := c.r.readRequest(c.args[:0])
	c.args = args
	return args, dialect, err
}

// flushPending writes the buffered replies, taking wmu.
func (c *conn) flushPending() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

// flushLocked writes the buffered replies within WriteTimeout; wmu is held.
func (c *conn) flushLocked() error {
	if c.w.bw.Buffered() == 0 {
		return nil
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.Limits.WriteTimeout))
	return c.w.bw.Flush()
}

// close ends the connection: its subscriptions, forwarders and socket.
func (c *conn) close() {
	c.cancel()
	for _, sub := range c.subs {
		sub.close()
	}
	c.fwd.Wait()
	c.nc.Close()
}

// isGone reports the errors of a client that went away or of a
// connection the server ended: nothing worth logging.
func isGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, errInterrupted) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.Canceled) ||
		isReset(err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// watchGone watches the socket while a command blocks: gone is closed if
// the client hangs up. A request the client sends meanwhile stays
// buffered for later. stop ends the watch and must be called before the
// connection reads again.
func (c *conn) watchGone() (gone <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	done := make(chan struct{})
	c.cr.setMode(readForever)
	go func() {
		defer close(done)
		if _, err := c.br.Peek(1); err != nil && !errors.Is(err, errInterrupted) {
			close(ch)
		}
	}()
	return ch, func() {
		c.cr.interrupt()
		<-done
		c.cr.resume(c.srv.ctx)
	}
}
