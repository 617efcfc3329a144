package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tabreduce/tabreduce/server/kv"
	"github.com/tabreduce/tabreduce/static"
)

// New builds the Echo instance with every route. reg receives the HTTP
// metrics; /metrics serves gather.
func New(cfg Config, d Deps, reg prometheus.Registerer, gather prometheus.Gatherer) *echo.Echo {
	e, _ := NewWithFastPath(cfg, d, reg, gather)
	return e
}

// NewWithFastPath is New, and the fast path that answers RestMQ's push and
// hard get on connections of its own before Echo (fast.go): serve the Echo
// instance through FastPath.Listen's listener.
func NewWithFastPath(cfg Config, d Deps, reg prometheus.Registerer, gather prometheus.Gatherer) (*echo.Echo, *FastPath) {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.BodyIdleTimeout <= 0 {
		cfg.BodyIdleTimeout = DefaultBodyIdleTimeout
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxWorkerFrame <= 0 {
		cfg.MaxWorkerFrame = 65 << 20
	}
	if cfg.FirstFrameWait <= 0 {
		cfg.FirstFrameWait = 500 * time.Millisecond
	}
	if cfg.MaxInput <= 0 {
		cfg.MaxInput = DefaultMaxInput
	}
	if cfg.MaxModule <= 0 {
		cfg.MaxModule = DefaultMaxModule
	}
	if cfg.MaxAnonWorkers <= 0 {
		cfg.MaxAnonWorkers = DefaultMaxAnonWorkers
	}
	if cfg.MaxAnonWorkersPerAddr <= 0 {
		cfg.MaxAnonWorkersPerAddr = DefaultMaxAnonWorkersPerAddr
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	a := &API{cfg: cfg, broker: d.Broker, kv: kv.New(d.KV), hub: d.Hub, engine: d.Engine, log: d.Log, started: time.Now(), landing: d.Landing,
		anon: &anonWorkers{max: cfg.MaxAnonWorkers, perAddr: cfg.MaxAnonWorkersPerAddr, byAddr: map[string]int{}}}

	a.dashboards = &dashboardFeed{
		build: func(ctx context.Context) ([]byte, error) { return json.Marshal(a.snapshot(ctx)) },
		done:  d.Done,
		made: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tabreduce_dashboard_snapshots_total",
			Help: "Snapshots made for the dashboard's sockets, which all share each one.",
		}),
		subs: map[chan []byte]struct{}{},
	}
	reg.MustRegister(a.dashboards.made)
	a.latency = newLatency(reg)
	a.sessions = cmp.Or(d.Sessions, &sync.WaitGroup{})
	a.stopping = untilClosed(d.Done)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Pre(a.checkHost) // DNS rebinding (origin.go)
	e.Pre(headAsGet)   // HEAD on every GET route (head.go)
	e.Use(middleware.Recover())
	e.Use(middleware.RequestID())
	e.Use(observeLatency(a.latency))
	e.Use(boundWrites(cfg.WriteTimeout), boundBodies(cfg.BodyIdleTimeout)) // timeouts.go
	e.Use(a.headGuard)
	e.Use(unescapeParams)
	e.Use(a.guardPages)        // cross-site request forgery (origin.go)
	e.Use(a.securityHeaders()) // CSP and framing (csp.go)
	// Routes that take large bodies set their own limit (limitBody).
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   byteSize(cfg.MaxBody),
		Skipper: func(c echo.Context) bool { return ownBodyLimit[c.Request().Method+" "+c.Path()] },
	}))

	write := a.auth(false) // token whenever one is set
	read := a.auth(true)   // token unless the name is public

	e.GET("/healthz", a.healthz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gather, promhttp.HandlerOpts{})), write)

	// RestMQ's routes, with RestMQ's answers (restmq.go, protocol.go,
	// stats.go, live.go, ws.go, pages.go).
	e.GET("/", a.root) // redirects to IndexPath; ?queue= checks auth itself
	e.POST("/", a.rootAdd, write)
	e.GET(IndexPath, a.indexPage)
	e.GET(HelpPath, helpPage)
	e.GET("/q", a.listQueues, read)
	e.GET("/q/", a.queuePage("q"), read)
	// The fast path (fast.go) answers the plainest of these two before
	// Echo: a check added to them, or to the middleware above, must be
	// made there too (or make it hand such requests to Echo).
	e.POST("/q/:queue", a.push, write)
	e.GET("/q/:queue", a.take, read)
	e.DELETE("/q/:queue", a.purge, write)
	e.GET("/c/:queue", a.comet, read)
	e.GET("/ws/:queue", a.websocket, read)
	e.POST("/p/:queue", a.setPolicy, write)
	e.GET("/p/:queue", a.getPolicy, read)
	e.GET("/j/:queue", a.jobPage, read)
	e.POST("/control/:queue", a.setControl, write)
	e.GET("/control/", a.allControl, read)
	e.GET("/control/:queue", a.getControl, read)
	e.GET("/stats", a.allStats, read)
	e.GET("/stats/", a.allStats, read)
	e.GET("/stats/:queue", a.queueStats, read)
	e.GET("/queue", protocolHelp)
	e.POST("/queue", a.jsonProtocol, write)

	// At-least-once consumption.
	e.POST("/api/v1/queues/:queue/messages", a.pushBatch, write)
	e.GET("/api/v1/queues/:queue/messages", a.peekMessages, read) // peek.go
	e.POST("/api/v1/queues/:queue/requeue", a.requeue, write)     // requeue.go
	e.POST("/api/v1/queues/:queue/lease", a.lease, write)
	e.POST("/api/v1/queues/:queue/ack", a.ack, write)
	e.POST("/api/v1/queues/:queue/nack", a.nack, write)
	e.POST("/api/v1/queues/:queue/extend", a.extend, write)

	// Workers: anonymous, no token (a trusted worker presents one). Under
	// /api/v1, so that no queue name is shadowed on /ws/{queue}.
	e.GET(WorkerSocketPath, a.workerSession)

	// Pub/sub with presence (pubsub.go).
	e.GET("/ws/pubsub/:channel", a.pubsubSubscribe, read)
	e.GET("/pub/:channel", a.pubsubStream, read)
	e.POST("/pub/:channel", a.pubsubPublish, write)
	e.GET("/presence/:channel", a.pubsubPresence, read)

	// Key/value.
	e.GET("/kv/*", a.kvGet, read)
	e.PUT("/kv/*", a.kvPut, write)
	e.DELETE("/kv/*", a.kvDelete, write)
	e.POST("/kv/mget", a.kvMGet, read)
	e.POST("/kv/mset", a.kvMSet, write)

	// Map/reduce jobs. Modules are content-addressed and open to everyone,
	// since volunteers' browsers fetch them without a token.
	e.POST("/api/v1/modules", a.uploadModule, write, limitBody(cfg.MaxModule))
	e.GET("/api/v1/modules", a.listModules, read)
	e.GET("/modules/:file", a.serveModule)
	e.POST("/api/v1/jobs", a.submitJob, write, limitBody(cfg.MaxInput))
	e.GET("/api/v1/jobs", a.listJobs, read)
	e.GET("/api/v1/jobs/:id", a.getJob, read)
	e.DELETE("/api/v1/jobs/:id", a.deleteJob, write)
	e.GET("/api/v1/jobs/:id/output", a.jobOutput, read)
	e.GET("/api/v1/workers", a.listWorkers, read)

	// The volunteer page, the dashboard and their assets (static/).
	e.GET("/worker", a.workerPage)
	e.GET("/dashboard", page(static.Dashboard))
	e.GET("/static/*", staticAssets)
	e.GET(DashboardSocketPath, a.dashboardSocket) // checks the token itself

	return e, newFastPath(a, reg)
}

// The worker's and the dashboard's sockets.
const (
	WorkerSocketPath    = "/api/v1/ws/worker"
	DashboardSocketPath = "/api/v1/ws/dashboard"
)

// ownBodyLimit lists the routes ("METHOD path") whose limitBody replaces
// the global MaxBody limit.
var ownBodyLimit = map[string]bool{
	"POST /api/v1/modules": true,
	"POST /api/v1/jobs":    true,
}

func (a *API) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "uptime_seconds": time.Since(a.started).Seconds()})
}

// unescapeParams percent-decodes the path parameters when Echo routed on
// the request's escaped path (it does whenever the path holds an escape
// that is not the canonical one, such as %2F or %2D): every handler then
// sees a queue, channel or key name decoded exactly once, however the
// client encoded it, and a name that decodes to one with "/" is refused by
// the name rule instead of being taken literally.
func unescapeParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().URL.RawPath == "" {
			return next(c)
		}
		vals := c.ParamValues()
		out := make([]string, len(vals))
		for i, v := range vals {
			u, err := url.PathUnescape(v)
			if err != nil {
				return badRequest("malformed path: %v", err)
			}
			out[i] = u
		}
		c.SetParamValues(out...)
		return next(c)
	}
}

// ipExtractor returns how a request's client address is found: the
// connection's own address, or, from a trusted proxy, the nearest address
// in X-Forwarded-For that is not a trusted proxy. Nothing else is trusted
// (not loopback, not private networks), so a client cannot name its own
// address.
func ipExtractor(proxies []*net.IPNet) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range proxies {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// limitBody bounds a route's request body to n bytes: a larger
// Content-Length is refused at once, and reading past n fails with an
// *http.MaxBytesError that bodyError answers with a 413.
func limitBody(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > n {
				return bodyError(&http.MaxBytesError{Limit: n})
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, n)
			return next(c)
		}
	}
}

// untilClosed returns a context cancelled when done closes (never, for a nil
// done).
func untilClosed(done <-chan struct{}) context.Context {
	if done == nil {
		return context.Background()
	}
	ctx, stop := context.WithCancel(context.Background())
	go func() { <-done; stop() }()
	return ctx
}
