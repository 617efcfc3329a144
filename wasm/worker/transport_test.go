package worker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

func TestPipe(t *testing.T) {
	a, b := Pipe()
	ctx := t.Context()
	frame := []byte("one")
	if err := a.Send(ctx, frame); err != nil {
		t.Fatal(err)
	}
	frame[0] = 'X' // Send copied it
	if err := a.Send(ctx, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Recv(ctx); err != nil || string(got) != "one" {
		t.Fatalf("Recv = %q, %v", got, err)
	}
	b.Close("bye")
	// What was sent before the close is still delivered, then the reason.
	if got, err := b.Recv(ctx); err != nil || string(got) != "two" {
		t.Fatalf("Recv after close = %q, %v", got, err)
	}
	if _, err := b.Recv(ctx); !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "bye") {
		t.Fatalf("Recv on closed = %v", err)
	}
	if err := a.Send(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send on closed = %v", err)
	}
	a.Close("again") // closing twice is harmless

	c, _ := Pipe()
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := c.Recv(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv with nothing sent = %v", err)
	}
	for range DefaultPipeFrames {
		c.Send(ctx, nil)
	}
	if err := c.Send(short, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send on a full pipe = %v", err)
	}
}

func TestWorkerURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/api/v1/ws/worker"},
		{"https://example.com/", "wss://example.com/api/v1/ws/worker"},
		{"https://example.com/prefix", "wss://example.com/prefix/api/v1/ws/worker"},
		{"ws://h:1/api/v1/ws/worker", "ws://h:1/api/v1/ws/worker"},
		{"ftp://h", ""},
		{"http://", ""},
		{"::", ""},
	}
	for _, tt := range tests {
		got, err := workerURL(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("workerURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestWebSocketSession runs a worker with the default Dial and module
// source against a real HTTP server playing the server's side: the worker
// dials WorkerPath with its header, fetches the module from /modules/ and
// answers a task.
func TestWebSocketSession(t *testing.T) {
	wasm := wasmtest.Module(t, wordcount)
	r, shas := compiled(t, wordcount)
	sha := shas[0]
	got := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /modules/{file}", func(w http.ResponseWriter, req *http.Request) {
		if req.PathValue("file") != sha+".wasm" {
			http.NotFound(w, req)
			return
		}
		w.Write(wasm)
	})
	mux.HandleFunc("GET "+WorkerPath, func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, req, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		select { // only the first session reports
		case got <- serveOneTask(req.Context(), c, sha):
		default:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	runWorker(t, Options{Server: srv.URL, Header: http.Header{"Authorization": {"Bearer s3cret"}}, Runner: r, Slots: 1})
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("no session")
	}
}

// serveOneTask is a minimal server session: WELCOME, one map task, its
// RESULTS.
func serveOneTask(ctx context.Context, c *websocket.Conn, sha string) error {
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	recv := func() (workerproto.Frame, error) {
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return nil, err
			}
			if typ != websocket.MessageBinary {
				return nil, errors.New("text message")
			}
			f, err := workerproto.Decode(b)
			if err != nil || f.Type() != workerproto.TypeHeartbeat {
				return f, err
			}
		}
	}
	if f, err := recv(); err != nil || f.Type() != workerproto.TypeHello {
		return errors.Join(err, errors.New("no HELLO"))
	}
	c.Write(ctx, websocket.MessageBinary, workerproto.Encode(&welcome))
	c.Write(ctx, websocket.MessageBinary, workerproto.Encode(&workerproto.Tasks{Tasks: []workerproto.Task{
		{ID: 7, Job: "j", Phase: workerproto.PhaseMap, Module: sha, Reducers: 1, Input: []byte("hi hi\n")}}}))
	f, err := recv()
	if err != nil {
		return err
	}
	res, ok := f.(*workerproto.Results)
	if !ok || len(res.Results) != 1 || pairsOf(res.Results[0].Partitions) != "hi=2" {
		return errors.New("unexpected answer to TASKS")
	}
	return c.Close(websocket.StatusNormalClosure, "done")
}

func TestRunOptions(t *testing.T) {
	r := wasmtest.Runner(t)
	for _, o := range []Options{{}, {Runner: r}, {Runner: r, Server: "ftp://x"}} {
		if err := Run(t.Context(), o); err == nil {
			t.Errorf("Run(%+v) accepted", o)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		w *= time.Millisecond
		if got := b.next(); got < w/2 || got > w {
			t.Fatalf("wait %d = %v, want in [%v, %v]", i, got, w/2, w)
		}
	}
	b.reset()
	if got := b.next(); got > 100*time.Millisecond {
		t.Fatalf("after reset: %v", got)
	}
}
