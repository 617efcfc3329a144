package engine

import (
	"cmp"
	"context"
	"errors"
	"io"
	"time"
)

// Errors the HTTP layer maps to statuses (server/httpapi/errors.go).
var (
	ErrJobNotFound    = errors.New("job not found")           // 404
	ErrModuleNotFound = errors.New("module not found")        // 404
	ErrNotDone        = errors.New("job has no output yet")   // 409
	ErrInputTooLarge  = errors.New("input exceeds the limit") // 413
	ErrFinished       = errors.New("job already finished")    // 409
)

// mapper and reducer are the module references of a spec's two phases.
func (s *Spec) mapper() string  { return cmp.Or(s.Mapper, s.Module) }
func (s *Spec) reducer() string { return cmp.Or(s.Reducer, s.Module) }

// ModuleInfo describes a registered module.
type ModuleInfo struct {
	Name    string `json:"name,omitempty"` // built-in job name
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Builtin bool   `json:"builtin"`
}

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

// WorkerInfo is what the API shows of a connected worker.
type WorkerInfo struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"` // browser, native or local
	Name        string    `json:"name,omitempty"`
	UserAgent   string    `json:"user_agent"`
	RemoteAddr  string    `json:"remote_addr"`
	Slots       int       `json:"slots"`
	Running     []string  `json:"running"` // task names: job/phase/n
	TasksDone   int64     `json:"tasks_done"`
	TasksFailed int64     `json:"tasks_failed"`
	BytesIn     int64     `json:"bytes_in"`
	Connected   time.Time `json:"connected"`
	LastSeen    time.Time `json:"last_seen"`
	// Trusted workers' results are not verified.
	Trusted  bool     `json:"trusted"`
	Standing Standing `json:"standing"`
	// Flagged workers were caught returning wrong results: disconnected,
	// refused, and listed here for the operator to see.
	Flagged bool `json:"flagged"`
}

// Input is a job's input being received: files stream to disk under the
// job's directory as they arrive, never whole in memory.
type Input struct {
	e     *Engine
	jobID string
	dir   string
	files []inputFile
	size  int64
}

// OutputFunc receives a job's output pairs, one call per pair.
type OutputFunc func(key, value []byte) error

var _ io.Closer = (*Engine)(nil)
