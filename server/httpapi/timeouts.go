package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// The HTTP server bounds how long a request may keep a connection without
// making progress: its headers by http.Server.ReadHeaderTimeout, its body by
// BodyIdleTimeout and each write of its response by WriteTimeout. A total
// read or write deadline (http.Server.ReadTimeout, WriteTimeout) would cut
// what is meant to be long: a 4 GiB job input on a slow link, a job's
// output, COMET and Server-Sent Events streams. So each deadline is armed
// again before every read of the body and every write of the response:
// a client that stops sending or stops reading is dropped; one that keeps
// going is not. WebSocket routes drop both before the upgrade, and their
// connections bound each write themselves (WriteTimeout) and read until the
// peer or the server ends them.

// Defaults of the timeouts.
const (
	DefaultBodyIdleTimeout   = 20 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// boundBodies is middleware that fails a read of the request body that
// waits longer than idle for the client's next bytes; the handler sees an
// error (a 400, "reading body: ... i/o timeout") and the connection is
// closed.
func boundBodies(idle time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.Body == nil || r.Body == http.NoBody {
				return next(c)
			}
			b := &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(c.Response()), idle: idle}
			r.Body = b
			defer b.after()
			return next(c)
		}
	}
}

// idleBody arms the connection's read deadline before each read of the
// body, and disarms it once the body has ended.
type idleBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	idle     time.Duration
	ended    bool // read to its end
	timedOut bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.ended || b.timedOut {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		// Past the body, the server reads ahead for the next request (and
		// to see the client leave): with no deadline, as without a body.
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut = true
		err = errBodyIdle
	}
	return n, err
}

// after sets the deadline the server reads under once the handler is done:
// none past a body read to its end; a past one after a body timed out, so
// that the connection closes instead of waiting for the rest; and, for a
// body left unread, idle again for the server to skip what is left of it.
func (b *idleBody) after() {
	switch {
	case b.ended:
	case b.timedOut:
		_ = b.rc.SetReadDeadline(time.Now())
	default:
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
}

// errBodyIdle is a body read that waited out BodyIdleTimeout.
var errBodyIdle = errors.New("the client sent nothing for too long")

// boundWrites is middleware that fails a write of the response that the
// client does not take within timeout. The deadline is armed before each
// write and flush, so a long response to a client that keeps reading goes
// on; after the handler it stays armed for the server's last flush. A live
// stream bounds its own writes instead (holdWriteDeadline).
func boundWrites(timeout time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			res := c.Response()
			w := &deadlineWriter{ResponseWriter: res.Writer, rc: http.NewResponseController(res.Writer), timeout: timeout}
			res.Writer = w
			defer func() {
				w.held = false
				w.arm()
			}()
			return next(c)
		}
	}
}

// deadlineWriter arms the connection's write deadline before each write.
// Its flush reports the connection's error: a handler that acknowledges
// what it flushed must know that the bytes did not go.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	held    bool // the handler sets the deadlines itself
}

func (w *deadlineWriter) arm() {
	if !w.held {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	}
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// FlushError flushes what is buffered, under the deadline.
func (w *deadlineWriter) FlushError() error {
	w.arm()
	return w.rc.Flush()
}

func (w *deadlineWriter) Flush() { _ = w.FlushError() }

// Unwrap gives http.ResponseController (and the WebSocket upgrade) the
// server's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// holdWriteDeadline stops boundWrites from arming the write deadline of c's
// response until the handler returns: a live stream arms it per message
// and may cut a write short by setting it to now, which a later arming
// would undo.
func holdWriteDeadline(c echo.Context) {
	var w http.ResponseWriter = c.Response().Writer
	for w != nil {
		if dw, ok := w.(*deadlineWriter); ok {
			dw.held = true
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// clearDeadlines drops the connection's read and write deadlines before a
// WebSocket upgrade: the socket outlives the request, and bounds its own
// writes.
func clearDeadlines(c echo.Context) {
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}
