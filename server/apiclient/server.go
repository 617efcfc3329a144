package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/tabreduce/tabreduce/api"
)

// Module is a module the server registered.
type Module struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// UploadModule registers a wasm module and returns its sha256, which a
// job's spec may name as its Module. A module the server refuses is a 400
// *Error that names the problem.
func (c *Client) UploadModule(ctx context.Context, wasm io.Reader) (Module, error) {
	return c.UploadModuleNamed(ctx, wasm, "")
}

// UploadModuleNamed is UploadModule for a module known by a name (its
// file's, usually), which the server's job list and dashboard show.
func (c *Client) UploadModuleNamed(ctx context.Context, wasm io.Reader, name string) (Module, error) {
	path := "/api/v1/modules"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	var m Module
	err := c.call(ctx, http.MethodPost, path, wasm, "application/wasm", http.StatusCreated, &m)
	return m, err
}

// Modules lists the registered modules, built-ins first.
func (c *Client) Modules(ctx context.Context) ([]api.ModuleInfo, error) {
	var body struct {
		Modules []api.ModuleInfo `json:"modules"`
	}
	err := c.get(ctx, "/api/v1/modules", &body)
	return body.Modules, err
}

// Workers lists the connected workers.
func (c *Client) Workers(ctx context.Context) ([]api.WorkerInfo, error) {
	var body struct {
		Workers []api.WorkerInfo `json:"workers"`
	}
	err := c.get(ctx, "/api/v1/workers", &body)
	return body.Workers, err
}

// Stats is GET /stats: every queue's statistics by name, as RestMQ keys
// them, and how many there are.
type Stats struct {
	Queues        map[string]api.QueueStats `json:"queues"`
	Count         int                       `json:"count"`
	UptimeSeconds float64                   `json:"uptime_seconds"`
}

// Stats returns the server's queue statistics.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := c.get(ctx, "/stats", &st)
	return st, err
}

// Health is GET /healthz.
type Health struct {
	Status        string  `json:"status"`
	UptimeSeconds float64 `json:"uptime_seconds"`
}

// Health checks that the server is up.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.get(ctx, "/healthz", &h)
	return h, err
}
