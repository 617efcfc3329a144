package httpapi

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/engine"
)

// Limits of anonymous worker sockets.
const (
	// HelloReadLimit bounds what a worker socket may send before its HELLO
	// has been read: a HELLO is a few hundred bytes, and a socket's first
	// frame is what anyone can make the server buffer.
	HelloReadLimit = 16 << 10
	// DefaultMaxAnonWorkers and DefaultMaxAnonWorkersPerAddr bound the
	// worker sockets open without the token, in all and from one address.
	DefaultMaxAnonWorkers        = 8192
	DefaultMaxAnonWorkersPerAddr = 64
	// WorkerSocketBuffers is the size of a worker socket's read buffer and
	// of its write buffer: an idle worker keeps both, and the frames
	// that matter (TASKS, RESULTS) are larger than either and go past
	// them.
	WorkerSocketBuffers = 1 << 10
)

// workerSession is GET /api/v1/ws/worker: a worker's session, binary frames
// of the worker protocol (docs/PROTOCOL.md). Workers are anonymous and need
// no token; one that presents the operator's token is trusted: its results
// are not verified. Anonymous sockets are counted, in all and by address
// (Config.MaxAnonWorkers, MaxAnonWorkersPerAddr): one past either is
// refused with a 429 before the upgrade. Until its HELLO has been read, a
// socket may send at most HelloReadLimit bytes.
func (a *API) workerSession(c echo.Context) error {
	r := c.Request()
	peer := engine.Peer{
		RemoteAddr: c.RealIP(),
		UserAgent:  r.UserAgent(),
		// Only the operator's token makes a worker trusted; with no token
		// set, no remote worker is (in-process ones always are).
		Trusted: a.cfg.Token != "" && a.tokenOK(r),
	}
	if err := a.checkUpgrade(c); err != nil {
		return err
	}
	release := func() {}
	if !peer.Trusted {
		var err error
		if release, err = a.anon.acquire(peer.RemoteAddr); err != nil {
			return &retryLater{err: err, after: 30}
		}
	}
	conn, err := a.acceptWebSocketBuffers(c, WorkerSocketBuffers)
	if conn == nil {
		release()
		return err
	}
	conn.SetReadLimit(HelloReadLimit)
	t := &wsTransport{conn: conn, limit: int64(a.cfg.MaxWorkerFrame)}
	// The session runs on in a goroutine of its own and this handler
	// returns: what net/http and Echo hold for a request while its handler
	// runs (the connection's write buffer, the response's, the request and
	// its headers, the handler's deep stack) is then free, which is most
	// of what an idle worker's socket cost the server.
	a.sessions.Add(1)
	go func() {
		defer a.sessions.Done()
		defer release()
		if err := a.engine.ServeWorker(a.stopping, t, peer); err != nil {
			a.log.Info("worker session ended", "remote", peer.RemoteAddr, "err", err)
		}
		conn.Close(websocket.StatusNormalClosure, "")
	}()
	return nil
}

// anonWorkers counts the open anonymous worker sockets, in all and by
// address, against their caps.
type anonWorkers struct {
	max, perAddr int

	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

// acquire counts one more socket from addr, or refuses it; release uncounts
// it.
func (w *anonWorkers) acquire(addr string) (release func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.total >= w.max:
		return nil, &api.Error{Code: api.CodeTooMany, Message: fmt.Sprintf("too many anonymous workers: the server takes %d", w.max)}
	case w.byAddr[addr] >= w.perAddr:
		return nil, &api.Error{Code: api.CodeTooMany, Message: fmt.Sprintf("too many anonymous workers from %s: the server takes %d from one address", addr, w.perAddr)}
	}
	w.total++
	w.byAddr[addr]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.total--
		if w.byAddr[addr]--; w.byAddr[addr] <= 0 {
			delete(w.byAddr, addr)
		}
	}, nil
}

// wsTransport carries worker-protocol frames as binary WebSocket messages.
// The connection's read limit is HelloReadLimit until the first frame (the
// HELLO) has been read, then limit.
type wsTransport struct {
	conn   *websocket.Conn
	limit  int64
	raised bool
}

func (t *wsTransport) Send(ctx context.Context, frame []byte) error {
	return t.conn.Write(ctx, websocket.MessageBinary, frame)
}

var errTextFrame = errors.New("worker protocol frames are binary messages")

func (t *wsTransport) Recv(ctx context.Context) ([]byte, error) {
	typ, b, err := t.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		return nil, errTextFrame
	}
	if !t.raised {
		t.raised = true
		t.conn.SetReadLimit(t.limit)
	}
	return b, nil
}

func (t *wsTransport) Close(reason string) error {
	status := websocket.StatusNormalClosure
	if reason != "" {
		status = websocket.StatusPolicyViolation
	}
	if len(reason) > 120 {
		reason = fmt.Sprintf("%.117s...", reason)
	}
	return t.conn.Close(status, reason)
}
