package httpapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/engine"
)

// workerSession is GET /api/v1/ws/worker: a worker's session, binary frames of the
// worker protocol (docs/PROTOCOL.md). Workers are anonymous and need no
// token; one that presents the operator's token is trusted: its results are
// not verified.
func (a *API) workerSession(c echo.Context) error {
	conn, err := a.acceptWebSocket(c)
	if conn == nil {
		return err
	}
	conn.SetReadLimit(int64(a.cfg.MaxWorkerFrame))
	peer := engine.Peer{
		RemoteAddr: c.RealIP(),
		UserAgent:  c.Request().UserAgent(),
		// Only the operator's token makes a worker trusted; with no token
		// set, no remote worker is (in-process ones always are).
		Trusted: a.cfg.Token != "" && a.tokenOK(c.Request()),
	}
	err = a.engine.ServeWorker(c.Request().Context(), &wsTransport{conn: conn}, peer)
	if err != nil {
		a.log.Info("worker session ended", "remote", peer.RemoteAddr, "err", err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	return nil
}

// wsTransport carries worker-protocol frames as binary WebSocket messages.
type wsTransport struct {
	conn *websocket.Conn
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
