package worker

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// WorkerPath is the server's WebSocket endpoint for workers.
const WorkerPath = "/api/v1/ws/worker"

// DialWebSocket connects to the worker endpoint of the server at serverURL
// (http://host:port, https://…, or ws(s)://; WorkerPath is appended unless
// the URL already ends with it) and returns a Transport over the WebSocket,
// sending header with the handshake (an Authorization bearer token, say).
// Frames travel as binary messages; a message larger than
// workerproto.DefaultMaxFrameBytes ends the connection.
func DialWebSocket(ctx context.Context, serverURL string, header http.Header) (Transport, error) {
	return dialWebSocket(ctx, serverURL, header, workerproto.DefaultMaxFrameBytes)
}

// DialWebSocketOptions is DialWebSocket with the handshake's options given
// whole: an HTTP client of its own (to dial from a given local address,
// say) besides the header.
func DialWebSocketOptions(ctx context.Context, serverURL string, opts *websocket.DialOptions) (Transport, error) {
	return dialWebSocketOptions(ctx, serverURL, opts, workerproto.DefaultMaxFrameBytes)
}

func dialWebSocket(ctx context.Context, serverURL string, header http.Header, readLimit int) (Transport, error) {
	return dialWebSocketOptions(ctx, serverURL, &websocket.DialOptions{HTTPHeader: header}, readLimit)
}

func dialWebSocketOptions(ctx context.Context, serverURL string, opts *websocket.DialOptions, readLimit int) (Transport, error) {
	u, err := workerURL(serverURL)
	if err != nil {
		return nil, err
	}
	c, _, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	c.SetReadLimit(int64(readLimit))
	return &wsTransport{c: c}, nil
}

// workerURL turns a server's base URL into its worker WebSocket URL.
func workerURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("server URL: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("server URL %q: scheme must be http, https, ws or wss", server)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q has no host", server)
	}
	if !strings.HasSuffix(u.Path, WorkerPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + WorkerPath
	}
	return u.String(), nil
}

// wsTransport is a Transport over one WebSocket connection.
type wsTransport struct {
	c *websocket.Conn
}

func (w *wsTransport) Send(ctx context.Context, frame []byte) error {
	return w.c.Write(ctx, websocket.MessageBinary, frame)
}

func (w *wsTransport) Recv(ctx context.Context) ([]byte, error) {
	typ, b, err := w.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		return nil, fmt.Errorf("server sent a %v message; the protocol is binary", typ)
	}
	return b, nil
}

// Close sends a normal closure with reason (cut to the 123 bytes a close
// frame allows) and waits briefly for the server's answer.
func (w *wsTransport) Close(reason string) error {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return w.c.Close(websocket.StatusNormalClosure, reason)
}
