package engine

import (
	"cmp"
	"context"
	"errors"
	"io"

	"github.com/tabreduce/tabreduce/api"
)

// Errors the HTTP layer maps to statuses (server/httpapi/errors.go).
var (
	ErrJobNotFound    = errors.New("job not found")           // 404
	ErrModuleNotFound = errors.New("module not found")        // 404
	ErrNotDone        = errors.New("job has no output yet")   // 409
	ErrInputTooLarge  = errors.New("input exceeds the limit") // 413
	ErrFinished       = errors.New("job already finished")    // 409
	ErrNotFinished    = errors.New("job has not finished")    // 409: cancel it before deleting it
)

// mapper and reducer are the module references of a spec's two phases.
func specMapper(s *Spec) string  { return cmp.Or(s.Mapper, s.Module) }
func specReducer(s *Spec) string { return cmp.Or(s.Reducer, s.Module) }

// ModuleInfo is api.ModuleInfo.
type ModuleInfo = api.ModuleInfo

// Transport carries the worker protocol's frames (package workerproto) in
// both directions: a WebSocket for remote workers, a pipe for in-process
// ones. Send and Recv may be called concurrently with each other.
type Transport interface {
	Send(ctx context.Context, frame []byte) error
	Recv(ctx context.Context) ([]byte, error)
	Close(reason string) error
}

// Peer is what the server knows of a worker's connection.
type Peer struct {
	RemoteAddr string
	UserAgent  string
	Trusted    bool // connected with the operator's token, or in-process
}

// WorkerInfo is api.WorkerInfo.
type WorkerInfo = api.WorkerInfo

// Input is a job's input being received: files stream to disk under the
// job's directory as they arrive, never whole in memory.
type Input struct {
	e     *Engine
	jobID string
	dir   string
	files []inputFile
	size  int64
	// shared: some of it was copied to the shared blob store.
	shared bool
}

// OutputFunc receives a job's output pairs, one call per pair.
type OutputFunc func(key, value []byte) error

var _ io.Closer = (*Engine)(nil)
