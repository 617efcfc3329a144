// Package httpapi is the broker's HTTP surface: RestMQ's routes, the
// at-least-once lease API, live COMET and WebSocket consumers, pub/sub,
// key/value, the map/reduce job API, stats and metrics. Handlers translate
// HTTP to calls on the broker, the store and the job engine; every route is
// listed in routes.go.
package httpapi

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/kv"
	"github.com/tabreduce/tabreduce/server/pubsub"
)

// Config is what the HTTP layer needs to know of the server's settings.
type Config struct {
	MaxBody int64  // bytes per request body
	Token   string // bearer token for writes and admin routes; "" allows all
	// PublicRead lists queue, channel and key name patterns (path.Match
	// syntax) whose reads stay open when Token is set; "*" opens every read.
	PublicRead []string
	JSONP      bool // answer ?callback= on JSON GETs (lets any page read queues)
	// AllowOrigins lists the web origins, besides the server's own, whose
	// pages may open its WebSockets and read its live streams (COMET and
	// Server-Sent Events): an origin ("https://app.example.com"), a
	// path.Match pattern of one ("https://*.example.com"), a host alone
	// ("app.example.com", any scheme), "null" (file:// pages) or "*" (any
	// origin). It is the one setting of cross-origin access.
	AllowOrigins []string
	// AllowHosts lists the host names (path.Match patterns, "*" for any),
	// besides IP addresses, localhost and names under .localhost, that a
	// request's Host may give. It is enforced on a server without a token,
	// and on any server that sets it: a name that is not listed could be a
	// web page's own, pointed at this server (DNS rebinding).
	AllowHosts []string
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For is believed; a request from any other address is
	// known by that address alone.
	TrustedProxies []*net.IPNet
	// WriteTimeout bounds each write of a response, and each write to a
	// live consumer (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	// BodyIdleTimeout bounds the wait for each read of a request body
	// (default DefaultBodyIdleTimeout).
	BodyIdleTimeout time.Duration
	// ReadHeaderTimeout bounds the wait for a request's headers, and
	// IdleTimeout a kept-alive connection's wait for its next request, on
	// the fast path's connections (the http.Server given the Echo instance
	// should have the same; defaults DefaultReadHeaderTimeout,
	// DefaultIdleTimeout).
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// FirstFrameWait is how long a WebSocket consumer may take to send its
	// optional first frame before delivery starts (default 500 ms).
	FirstFrameWait time.Duration
	// MaxInput bounds a job submission's body, input files included
	// (default DefaultMaxInput); MaxBody does not apply to it.
	MaxInput int64
	// MaxModule bounds an uploaded wasm module (default DefaultMaxModule).
	MaxModule int64
	// MaxWorkerFrame bounds one worker-protocol frame (default 65 MiB).
	MaxWorkerFrame int
	// MaxAnonWorkers and MaxAnonWorkersPerAddr cap the worker sockets open
	// without the token, in all and from one client address (defaults
	// DefaultMaxAnonWorkers, DefaultMaxAnonWorkersPerAddr).
	MaxAnonWorkers        int
	MaxAnonWorkersPerAddr int
}

// Defaults of Config's job limits.
const (
	DefaultMaxInput  = 4 << 30
	DefaultMaxModule = 32 << 20
)

// KVStore is what the key/value routes need of the store.
type KVStore = kv.Store

// API holds the handlers' dependencies.
type API struct {
	cfg     Config
	broker  *broker.Broker
	kv      *kv.Space
	hub     *pubsub.Hub
	engine  *engine.Engine
	log     *slog.Logger
	started time.Time
	landing []byte // GET / without ?queue=
	anon    *anonWorkers
	// dashboards makes the snapshots every dashboard socket shares.
	dashboards *dashboardFeed
	// sessions counts the worker sessions running past their handshake's
	// handler (workerSession); stopping ends when Deps.Done closes.
	sessions *sync.WaitGroup
	stopping context.Context
	// latency is the request-latency histogram (newLatency).
	latency *prometheus.HistogramVec
}

// Deps are the parts the API is built on.
type Deps struct {
	Broker  *broker.Broker
	KV      KVStore
	Hub     *pubsub.Hub
	Engine  *engine.Engine // the job routes' coordinator; required
	Log     *slog.Logger
	Landing []byte // the landing page's HTML
	// Done is closed when the server shuts down: the dashboard's sockets,
	// which nothing else ends, close then, and so do the worker sockets
	// still waiting for their HELLO.
	Done <-chan struct{}
	// Sessions, when set, counts the running worker sessions: each runs in
	// a goroutine of its own once its socket is open (see workerSession),
	// and the server waits for the count to reach zero after closing the
	// engine, which ends them.
	Sessions *sync.WaitGroup
}
