// Package worker is the tabreduce worker loop: it connects to the server
// (over a WebSocket, or an in-process Pipe), says HELLO, runs the tasks the
// server hands it on a wasm runner, and sends back their results, failures
// and heartbeats, reconnecting with backoff whenever the connection drops.
// `tabreduce worker` runs it as a native process; `tabreduce serve
// --local-workers N` runs it in the server's process on the server's runner.
//
// A session runs three kinds of goroutines: one reader, which decodes the
// server's frames and routes them through one switch (TASKS queue tasks,
// CANCEL aborts them, ERROR ends the session) and never waits on a task;
// Slots slot goroutines, each running one task at a time; and one writer,
// which batches finished tasks into RESULTS and FAILURES frames and sends a
// HEARTBEAT every interval. docs/PROTOCOL.md describes the exchange.
//
// Options.Faulty exists only to test the server's verification of results
// (replication, known-answer tasks, spot checks): it makes the worker return
// plausible but wrong results for a share of its tasks, as a buggy or
// cheating volunteer would. `tabreduce worker --faulty` sets it.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// Defaults for Options.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMinBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff       = 10 * time.Second
	// DefaultHeartbeat applies when WELCOME gives no interval.
	DefaultHeartbeat = 5 * time.Second
	// Batch limits: a RESULTS frame carries at most this many results or
	// about this many bytes (a single larger result goes alone).
	MaxBatchResults  = 64
	MaxBatchBytes    = 4 << 20
	MaxBatchFailures = 256
	// MaxQueuedPerSlot caps the tasks a worker accepts per slot whatever
	// prefetch WELCOME allows.
	MaxQueuedPerSlot = 64
)

// Options configure a worker. Runner is required, and either Server or
// Dial.
type Options struct {
	// Server is the server's base URL, http(s)://host:port. The default Dial
	// connects to its WebSocket endpoint and the default Modules fetches
	// from it.
	Server string
	// Header goes with the WebSocket handshake and module fetches (an
	// Authorization bearer token).
	Header http.Header
	// Dial opens a connection to the server; default DialWebSocket(Server).
	Dial func(ctx context.Context) (Transport, error)
	// Runner runs the tasks; the caller owns it and closes it after Run.
	Runner *runner.Runner
	// Modules prepares a task's module. Nil means HTTPModules from Server
	// if Server is set, and otherwise that Runner already holds every module
	// (an in-process worker sharing the server's runner).
	Modules ModuleSource
	// TrustedModules lists the sha256 of modules the default Modules runs as
	// trusted code (the built-in jobs shipped with this binary).
	TrustedModules map[string]bool
	// Slots is how many tasks run at once (default GOMAXPROCS).
	Slots int
	// Kind is announced in HELLO (default workerproto.KindNative).
	Kind workerproto.Kind
	// Name is an optional label shown in the server's worker list.
	Name string
	// UserAgent is announced in HELLO (default "tabreduce-worker (os/arch)").
	UserAgent string
	// MaxFrameBytes bounds a frame from the server (default
	// workerproto.DefaultMaxFrameBytes).
	MaxFrameBytes int
	// HandshakeTimeout bounds dial plus HELLO → WELCOME.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one frame send; a server that does not take a
	// frame in time is dropped.
	WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnections; it
	// doubles from Min to Max with jitter and resets after a session was
	// welcomed.
	MinBackoff, MaxBackoff time.Duration
	// Logger defaults to slog.Default.
	Logger *slog.Logger
	// Faulty, for testing the server's verification only, is the share of
	// results (0 to 1) this worker corrupts after computing them correctly:
	// one value changed (a decimal count plus one, otherwise a flipped bit)
	// or one pair dropped, with framing, order and partitions kept, so that
	// only verification can tell. A task without output pairs is never
	// corrupted. 0, the default, is an honest worker.
	Faulty float64
	// FaultySeed seeds the choice of the results Faulty corrupts and how,
	// for reproducible tests; 0 draws a seed.
	FaultySeed uint64
	// FaultyAgree makes Faulty workers of one FaultySeed corrupt a given
	// result the same way, as colluders agreeing on a forgery would (the
	// choice is drawn from the seed and the result, not from a sequence).
	FaultyAgree bool

	faults *faults // from Faulty and FaultySeed; nil for an honest worker
}

func (o Options) withDefaults() (Options, error) {
	if o.Runner == nil {
		return o, errors.New("worker: Options.Runner is required")
	}
	if o.Dial == nil {
		if o.Server == "" {
			return o, errors.New("worker: Options.Server or Options.Dial is required")
		}
		if _, err := workerURL(o.Server); err != nil {
			return o, fmt.Errorf("worker: %w", err)
		}
		server, header, limit := o.Server, o.Header, o.MaxFrameBytes
		if limit <= 0 {
			limit = workerproto.DefaultMaxFrameBytes
		}
		o.Dial = func(ctx context.Context) (Transport, error) { return dialWebSocket(ctx, server, header, limit) }
	}
	if o.Modules == nil && o.Server != "" {
		o.Modules = &HTTPModules{Server: o.Server, Header: o.Header, Trusted: o.TrustedModules}
	}
	if o.Slots <= 0 {
		o.Slots = runtime.GOMAXPROCS(0)
	}
	o.Slots = min(o.Slots, 1<<16-1)
	if o.Kind == 0 {
		o.Kind = workerproto.KindNative
	}
	if o.UserAgent == "" {
		o.UserAgent = "tabreduce-worker (" + runtime.GOOS + "/" + runtime.GOARCH + ")"
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = workerproto.DefaultMaxFrameBytes
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if !(o.Faulty >= 0 && o.Faulty <= 1) {
		return o, fmt.Errorf("worker: Options.Faulty %g is outside 0..1", o.Faulty)
	}
	o.faults = newFaults(o.Faulty, o.FaultySeed)
	if o.faults != nil {
		o.faults.agree = o.FaultyAgree
	}
	return o, nil
}

// Run runs the worker until ctx ends: it connects, serves a session, and
// when the session ends (the connection dropped, the server closed it)
// waits a backoff and connects again. Tasks running when a session ends are
// cancelled; the server reassigns them. Run returns nil once ctx is done and
// every goroutine it started has ended, or an error if opts are unusable.
func Run(ctx context.Context, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	log := opts.Logger
	b := backoff{min: opts.MinBackoff, max: opts.MaxBackoff}
	for ctx.Err() == nil {
		welcomed, err := serveSession(ctx, &opts)
		if welcomed {
			b.reset()
		}
		if ctx.Err() != nil {
			break
		}
		wait := b.next()
		log.Warn("worker session ended", "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}
