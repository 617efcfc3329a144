// Package servertest starts a real server, and real workers for it, for the
// tests of packages that talk to one (the API client, the CLI).
package servertest

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/worker"
)

// Start starts a server with cfg on a loopback port, with a fresh data
// directory unless cfg names one and a silent logger unless it has one. It
// is closed when the test ends.
func Start(tb testing.TB, cfg server.Config) *server.Server {
	tb.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("start server: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("close server: %v", err)
		}
	})
	return srv
}

// StartWorker runs a native worker with two slots for the server at
// serverURL, over its WebSocket, until the test ends. token, if not "", is
// sent as a bearer token.
func StartWorker(tb testing.TB, serverURL, token string) {
	tb.Helper()
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	opts := worker.Options{
		Server: serverURL, Header: header, Runner: wasmtest.Runner(tb), Slots: 2,
		TrustedModules: jobs.SHAs(), Logger: slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, opts) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("worker: %v", err)
		}
	})
}
