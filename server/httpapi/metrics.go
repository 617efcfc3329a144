package httpapi

import (
	"context"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabreduce/tabreduce/server/broker"
)

// observeLatency records every request in a latency histogram labelled by
// method, route pattern (not the raw path, to bound the label set) and status.
func observeLatency(hist *prometheus.HistogramVec) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			status := c.Response().Status
			if err != nil {
				status = httpStatus(err)
			}
			hist.WithLabelValues(c.Request().Method, c.Path(), strconv.Itoa(status)).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// newLatency registers the histogram of request latencies that
// observeLatency (and the fast path) feed.
func newLatency(reg prometheus.Registerer) *prometheus.HistogramVec {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tabreduce_http_request_duration_seconds",
		Help:    "HTTP request latency by method, route and status.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "status"})
	reg.MustRegister(hist)
	return hist
}

// queueCollector exports every queue's depth and totals at scrape time, read
// from the store, so the figures survive restarts and never drift, and the
// broker's operation totals by kind.
type queueCollector struct {
	b    *broker.Broker
	desc map[string]*prometheus.Desc
	ops  *prometheus.Desc
}

// NewQueueCollector returns a collector of per-queue metrics.
func NewQueueCollector(b *broker.Broker) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("tabreduce_queue_"+name, help, []string{"queue"}, nil)
	}
	return &queueCollector{b: b, desc: map[string]*prometheus.Desc{
		"length":    d("length", "Messages ready for delivery."),
		"in_flight": d("in_flight", "Messages under lease."),
		"consumers": d("consumers", "Live COMET and WebSocket consumers."),
		"pushed":    d("pushed_total", "Messages pushed."),
		"delivered": d("delivered_total", "Messages handed out: gets, leases and live deliveries."),
		"acked":     d("acked_total", "Leases acknowledged."),
		"dead":      d("dead_lettered_total", "Messages moved to the dead-letter queue."),
	}, ops: prometheus.NewDesc("tabreduce_broker_operations_total",
		"Broker operations since start, by kind: push, take (hard get), peek (soft get), lease, live (COMET/WebSocket delivery), ack, nack, expired (TTL).",
		[]string{"op"}, nil)}
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range q.desc {
		ch <- d
	}
	ch <- q.ops
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := q.b.Counters()
	for op, v := range map[string]int64{
		"push": c.Pushes, "take": c.Takes, "peek": c.Peeks, "lease": c.Leases,
		"live": c.LiveDeliveries, "ack": c.Acks, "nack": c.Nacks, "expired": c.Expired,
	} {
		ch <- prometheus.MustNewConstMetric(q.ops, prometheus.CounterValue, float64(v), op)
	}
	qs, err := q.b.List(ctx)
	if err != nil {
		return
	}
	for _, s := range qs {
		gauge := func(k string, v float64) {
			ch <- prometheus.MustNewConstMetric(q.desc[k], prometheus.GaugeValue, v, s.Name)
		}
		counter := func(k string, v float64) {
			ch <- prometheus.MustNewConstMetric(q.desc[k], prometheus.CounterValue, v, s.Name)
		}
		gauge("length", float64(s.Length))
		gauge("in_flight", float64(s.InFlight))
		gauge("consumers", float64(s.Consumers))
		counter("pushed", float64(s.Pushed))
		counter("delivered", float64(s.Delivered))
		counter("acked", float64(s.Acked))
		counter("dead", float64(s.DeadLettered))
	}
}
