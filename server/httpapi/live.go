package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// comet is GET /c/{queue}: a long-lived response that writes each message
// as it arrives, as RestMQ does: one JSON document {"key","value","count"} and
// "\r\n" per message, each flushed on its own (one HTTP chunk per message:
// RestMQ's clients parse each chunk as one document), or "callback(...);\r\n"
// with --jsonp and ?callback=. A client that asks for text/event-stream gets
// Server-Sent Events instead (sse.go). Each message stays leased until it has
// been written and flushed; a client that drops returns what it had not
// received.
func (a *API) comet(c echo.Context) error {
	if err := a.checkCallback(c); err != nil {
		return err
	}
	queue := c.Param("queue")
	if err := broker.CheckQueueName(queue); err != nil {
		return err
	}
	if err := a.checkStreamOrigin(c); err != nil {
		return err
	}
	format := a.cometFormat(c)
	if wantsEventStream(c.Request()) {
		format = sseMessage
	}
	cons, err := a.broker.Subscribe(queue, broker.SubscribeOptions{})
	if err != nil {
		return err
	}
	defer cons.Close()
	cw, stop := a.startStream(c, wantsEventStream(c.Request()), a.cfg.WriteTimeout, cons.Gone())
	defer stop()
	ctx := c.Request().Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cons.Gone():
			return nil
		case d := <-cons.C():
			err := cw.write(format(d.Message))
			cons.Done(d, err == nil)
			if err != nil {
				return nil
			}
		}
	}
}

// cometFormat returns how a COMET stream writes a message: RestMQ's JSON
// line, or its JSONP line.
func (a *API) cometFormat(c echo.Context) func(broker.Message) []byte {
	cb := a.callback(c)
	return func(m broker.Message) []byte {
		b, _ := json.Marshal(toMessageJSON(m)) // strings only: cannot fail
		if cb != "" {
			return []byte(cb + "(" + string(b) + ");\r\n")
		}
		return append(b, '\r', '\n')
	}
}

// startStream begins a live stream's response: text/plain for COMET as in
// RestMQ (nosniff, so that a browser shows it as it comes), or
// text/event-stream; cross-origin pages that AllowOrigins lists may read it.
// Each write is bounded by timeout, and gone's closing (the consumer was
// dropped) cuts a write in progress; stop ends the watch of gone.
func (a *API) startStream(c echo.Context, sse bool, timeout time.Duration, gone <-chan struct{}) (cw *cometWriter, stop func()) {
	a.allowCORS(c)
	w := c.Response()
	h := w.Header()
	if sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", echo.MIMETextPlainCharsetUTF8)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	holdWriteDeadline(c) // from here on each message arms its own
	cw = &cometWriter{w: w, rc: http.NewResponseController(w.Writer), timeout: timeout}
	done := make(chan struct{})
	go func() {
		select {
		case <-gone:
			cw.cut()
		case <-done:
		}
	}()
	return cw, func() { close(done) }
}

// cometWriter writes a live stream's messages, each flushed on its own. It
// bounds each write, and lets the broker's dropping of the consumer (purge,
// shutdown) fail a write stalled on a client that does not read, so that
// shutdown need not wait out the write timeout.
type cometWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration

	mu      sync.Mutex
	writing bool
	gone    bool
}

// begin arms the timeout of one message's write; false means the consumer
// is gone and nothing more is to be written.
func (w *cometWriter) begin() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone {
		return false
	}
	w.writing = true
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return true
}

// write writes and flushes one message; an error means the stream is over
// and the message may not have reached the client, nil that it is in the
// kernel's hands.
func (w *cometWriter) write(b []byte) error {
	if !w.begin() {
		return errStreamCut
	}
	defer w.end()
	return w.send(b)
}

func (w *cometWriter) send(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	return w.rc.Flush()
}

var errStreamCut = errors.New("live consumer dropped")

// end closes a message's write. A cut during it set the deadline to now:
// the deadline is renewed, so that the stream can still end cleanly.
func (w *cometWriter) end() {
	w.mu.Lock()
	w.writing = false
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	w.mu.Unlock()
}

// cut fails the write in progress, if any; between writes the stream ends
// cleanly instead.
func (w *cometWriter) cut() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gone = true
	if w.writing {
		_ = w.rc.SetWriteDeadline(time.Now())
	}
}
