package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// New builds the Echo instance with every route. reg receives the HTTP
// metrics; /metrics serves gather.
func New(cfg Config, d Deps, reg prometheus.Registerer, gather prometheus.Gatherer) *echo.Echo {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.FirstFrameWait <= 0 {
		cfg.FirstFrameWait = 500 * time.Millisecond
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	a := &API{cfg: cfg, broker: d.Broker, kv: d.KV, hub: d.Hub, log: d.Log, started: time.Now(), landing: d.Landing}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.Use(middleware.Recover())
	e.Use(middleware.RequestID())
	e.Use(observeLatency(reg))
	e.Use(middleware.BodyLimit(byteSize(cfg.MaxBody)))

	write := a.auth(false) // token whenever one is set
	read := a.auth(true)   // token unless the name is public

	e.GET("/healthz", a.healthz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gather, promhttp.HandlerOpts{})), write)

	// RestMQ's routes.
	e.GET("/", a.root) // the landing page; ?queue= checks auth itself
	e.POST("/", a.rootAdd, write)
	e.GET("/q", a.listQueues, read)
	e.POST("/q/:queue", a.push, write)
	e.GET("/q/:queue", a.take, read)
	e.DELETE("/q/:queue", a.purge, write)
	e.GET("/c/:queue", a.comet, read)
	e.GET("/ws/:queue", a.websocket, read)
	e.POST("/p/:queue", a.setPolicy, write)
	e.GET("/p/:queue", a.getPolicy, read)
	e.POST("/control/:queue", a.setControl, write)
	e.GET("/control/:queue", a.getControl, read)
	e.GET("/stats", a.allStats, read)
	e.GET("/stats/:queue", a.queueStats, read)
	e.POST("/queue", a.jsonProtocol, write)

	// At-least-once consumption.
	e.POST("/api/v1/queues/:queue/messages", a.pushBatch, write)
	e.POST("/api/v1/queues/:queue/lease", a.lease, write)
	e.POST("/api/v1/queues/:queue/ack", a.ack, write)
	e.POST("/api/v1/queues/:queue/nack", a.nack, write)
	e.POST("/api/v1/queues/:queue/extend", a.extend, write)

	// Pub/sub with presence.
	e.GET("/ws/pubsub/:channel", pubsubSubscribe(d.Hub, d.Log), read)
	e.POST("/pub/:channel", pubsubPublish(d.Hub), write)
	e.GET("/presence/:channel", pubsubPresence(d.Hub), read)

	// Key/value.
	e.GET("/kv/*", a.kvGet, read)
	e.PUT("/kv/*", a.kvPut, write)
	e.DELETE("/kv/*", a.kvDelete, write)
	e.POST("/kv/mget", a.kvMGet, read)
	e.POST("/kv/mset", a.kvMSet, write)

	return e
}

func (a *API) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "uptime_seconds": time.Since(a.started).Seconds()})
}
