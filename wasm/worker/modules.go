package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/tabreduce/tabreduce/wasm/modenc"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

// ModuleSource makes job modules runnable. The worker calls Prepare before
// every task, so once a module is ready it must return quickly. A worker
// inside the server needs none: its runner already holds every registered
// module (Options.Modules nil, Options.Server empty).
type ModuleSource interface {
	// Prepare makes the module with the given sha256 (64 lower-case hex
	// digits) runnable on r, or says why it cannot be; the task then fails
	// with workerproto.FailureModule. It is called concurrently.
	Prepare(ctx context.Context, r *runner.Runner, sha string) error
}

// ErrModuleUnavailable wraps every reason HTTPModules could not provide a
// module: the fetch failed, the bytes do not hash to the name, or they do not
// compile.
var ErrModuleUnavailable = errors.New("module unavailable")

// DefaultMaxModuleBytes bounds a fetched module.
const DefaultMaxModuleBytes = 256 << 20

// HTTPModules fetches modules from the server, GET {Server}/modules/{sha}.wasm,
// the first time a task needs them, checks that the bytes hash to the name
// and compiles them with runner.Compile (interruptible: a worker does not
// trust job code). wazero's compilation cache, when the runner has one, makes
// a later process's compile cheap; the fetch is repeated once per process.
// Concurrent tasks of a module wait for one fetch; a failed fetch is retried
// by the next task.
type HTTPModules struct {
	// Server is the server's base URL, http(s)://host:port.
	Server string
	// Header is sent with every fetch (an Authorization token).
	Header http.Header
	// Client defaults to http.DefaultClient.
	Client *http.Client
	// MaxBytes bounds a module (default DefaultMaxModuleBytes).
	MaxBytes int64
	// Trusted lists the sha256 of modules compiled into this binary as
	// built-in jobs: code we ship runs without termination checks.
	Trusted map[string]bool

	mu      sync.Mutex
	ready   map[string]bool
	loading map[string]*moduleLoad
}

// moduleLoad is one fetch in progress; done closes when err is set.
type moduleLoad struct {
	done chan struct{}
	err  error
}

// Prepare fetches and compiles the module unless that was done before.
func (h *HTTPModules) Prepare(ctx context.Context, r *runner.Runner, sha string) error {
	for {
		l, leader := h.start(sha)
		if l == nil {
			return nil // ready
		}
		if leader {
			l.err = h.load(ctx, r, sha)
			h.finish(sha, l)
			return l.err
		}
		select {
		case <-l.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		// A load abandoned because its own task was cancelled says nothing
		// about the module: try again.
		if !errors.Is(l.err, context.Canceled) || ctx.Err() != nil {
			return l.err
		}
	}
}

// start returns nil if the module is ready, else the load in progress and
// whether the caller must perform it.
func (h *HTTPModules) start(sha string) (l *moduleLoad, leader bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready[sha] {
		return nil, false
	}
	if h.loading == nil {
		h.ready, h.loading = map[string]bool{}, map[string]*moduleLoad{}
	}
	if l, ok := h.loading[sha]; ok {
		return l, false
	}
	l = &moduleLoad{done: make(chan struct{})}
	h.loading[sha] = l
	return l, true
}

// finish records the outcome of a load and wakes its waiters.
func (h *HTTPModules) finish(sha string, l *moduleLoad) {
	h.mu.Lock()
	delete(h.loading, sha)
	if l.err == nil {
		h.ready[sha] = true
	}
	h.mu.Unlock()
	close(l.done)
}

// load fetches, verifies and compiles one module.
func (h *HTTPModules) load(ctx context.Context, r *runner.Runner, sha string) error {
	wasm, err := h.fetch(ctx, sha)
	if err != nil {
		return fmt.Errorf("%w: module %.12s: %w", ErrModuleUnavailable, sha, err)
	}
	sum := sha256.Sum256(wasm)
	if got := hex.EncodeToString(sum[:]); got != sha {
		return fmt.Errorf("%w: module %.12s: the server's bytes hash to %.12s", ErrModuleUnavailable, sha, got)
	}
	compile := r.Compile
	if h.Trusted[sha] {
		// The same bytes are compiled into this binary as a built-in job:
		// code we ship is trusted, and runs without termination checks.
		compile = r.CompileTrusted
	}
	if _, err := compile(ctx, wasm); err != nil {
		return fmt.Errorf("%w: %w", ErrModuleUnavailable, err)
	}
	return nil
}

func (h *HTTPModules) fetch(ctx context.Context, sha string) ([]byte, error) {
	url := strings.TrimSuffix(h.Server, "/") + "/modules/" + sha + ".wasm"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h.Header {
		req.Header[k] = v
	}
	// Asked for explicitly, so the transport leaves the body to us: a
	// module is about a quarter of its size in brotli.
	req.Header.Set("Accept-Encoding", modenc.Brotli+", "+modenc.Gzip)
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	limit := h.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxModuleBytes
	}
	enc := resp.Header.Get("Content-Encoding")
	if enc != modenc.Identity && enc != modenc.Brotli && enc != modenc.Gzip {
		return nil, fmt.Errorf("GET %s: Content-Encoding %q, asked for %s or %s", url, enc, modenc.Brotli, modenc.Gzip)
	}
	wasm, err := modenc.Decode(resp.Body, enc, limit)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return wasm, nil
}
