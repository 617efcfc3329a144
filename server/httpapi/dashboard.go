package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/static"
)

// Dashboard push limits.
const (
	// dashboardInterval is how often /api/v1/ws/dashboard pushes a snapshot: more
	// than twice a second.
	dashboardInterval = 400 * time.Millisecond
	dashboardMaxJobs  = 50  // newest jobs in a snapshot
	dashboardMaxQueue = 200 // busiest queues in a snapshot
	dashboardAuthWait = 10 * time.Second
	dashboardReadMax  = 4 << 10
)

// snapshot is one push of /api/v1/ws/dashboard. Rates are left to the page: it
// differences the totals (tasks, bytes, a queue's pushed and acked, a
// worker's tasks done) of successive snapshots.
type snapshot struct {
	Time    time.Time           `json:"time"`
	Workers []engine.WorkerInfo `json:"workers"`
	Jobs    []jobJSON           `json:"jobs"`
	Queues  []broker.Stats      `json:"queues"`
	Totals  engine.Totals       `json:"totals"`
	// Token says whether the server has a token, which job submission,
	// cancel and output need.
	Token bool `json:"token"`
}

// page serves an embedded HTML page.
func page(body func() []byte) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.HTMLBlob(http.StatusOK, body())
	}
}

// maxModulePreloads bounds the modules the volunteer page preloads.
const maxModulePreloads = 2

// workerPage is GET /worker, the volunteer page, preloading the modules
// the waiting work needs (engine.WantedModules): a tab then downloads and
// compiles its first module while its scripts start (static/js/pool.js),
// not after its first task arrives.
func (a *API) workerPage(c echo.Context) error {
	body := static.Worker()
	var links []byte
	for _, sha := range a.engine.WantedModules(maxModulePreloads) {
		if isSHA256(sha) {
			links = fmt.Appendf(links, "<link rel=\"preload\" href=\"/modules/%s.wasm\" as=\"fetch\" crossorigin data-module=\"%s\">\n", sha, sha)
		}
	}
	if len(links) > 0 {
		at := []byte("<meta charset=\"utf-8\">\n")
		body = bytes.Replace(body, at, append(at, links...), 1)
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.HTMLBlob(http.StatusOK, body)
}

// staticAssets serves static/'s assets under /static/.
var staticAssets = echo.WrapHandler(http.StripPrefix("/static/", static.Handler()))

// dashboardSocket is GET /api/v1/ws/dashboard: a snapshot of workers, jobs,
// queues and totals as a JSON text message every dashboardInterval until the
// page goes away. When the server has a token, a browser (which cannot set
// headers on a WebSocket) sends {"token": "…"} as its first message; a
// client with the Authorization header needs not. Every socket gets the
// same snapshots (dashboardFeed): a hundred dashboards cost the store what
// one does. A socket that cannot take a snapshot within WriteTimeout is
// dropped; one that is merely slow skips to the newest.
func (a *API) dashboardSocket(c echo.Context) error {
	conn, err := a.acceptWebSocket(c)
	if conn == nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(dashboardReadMax)
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	if a.cfg.Token != "" && !a.tokenOK(c.Request()) && !a.dashboardAuth(ctx, conn) {
		conn.Close(websocket.StatusPolicyViolation, "unauthorized: send {\"token\": …} first")
		return nil
	}
	// Always keep reading (pings, closes); what the page sends is ignored.
	go func() {
		defer cancel()
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
		}
	}()
	snaps, unsubscribe := a.dashboards.subscribe()
	defer unsubscribe()
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusGoingAway, "")
			return nil
		case <-a.dashboards.done:
			conn.Close(websocket.StatusGoingAway, "server shutting down")
			return nil
		case b := <-snaps:
			wctx, wcancel := context.WithTimeout(ctx, a.cfg.WriteTimeout)
			err := conn.Write(wctx, websocket.MessageText, b)
			wcancel()
			if err != nil { // gone, or too slow to keep up: drop it
				return nil
			}
		}
	}
}

// dashboardFeed makes the dashboard's snapshots: one every
// dashboardInterval while any dashboard socket is open (and none while
// none is), the same bytes for every socket.
type dashboardFeed struct {
	build func(context.Context) ([]byte, error)
	done  <-chan struct{} // the server is shutting down
	made  prometheus.Counter

	mu      sync.Mutex
	subs    map[chan []byte]struct{}
	running bool
	last    []byte // the newest snapshot, for sockets that join between two
	lastAt  time.Time
}

// subscribe returns a channel of snapshots, the newest at once if it is
// recent, and the function that ends the subscription. The channel holds
// one snapshot: a newer one replaces one not yet taken.
func (f *dashboardFeed) subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[ch] = struct{}{}
	if f.last != nil && time.Since(f.lastAt) < dashboardInterval {
		ch <- f.last
	}
	if !f.running {
		f.running = true
		go f.run()
	}
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

// run makes a snapshot every dashboardInterval and hands it to every
// subscriber, until none is left or the server shuts down.
func (f *dashboardFeed) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(dashboardInterval)
	defer tick.Stop()
	for {
		b, err := f.build(ctx)
		f.mu.Lock()
		if len(f.subs) == 0 || ctx.Err() != nil {
			f.running = false
			f.mu.Unlock()
			return
		}
		if err == nil {
			f.made.Inc()
			f.last, f.lastAt = b, time.Now()
			for ch := range f.subs {
				select {
				case <-ch: // not taken yet: the newer one replaces it
				default:
				}
				ch <- b
			}
		}
		f.mu.Unlock()
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

// dashboardAuth reads the page's first message and checks its token.
func (a *API) dashboardAuth(ctx context.Context, conn *websocket.Conn) bool {
	rctx, cancel := context.WithTimeout(ctx, dashboardAuthWait)
	defer cancel()
	_, b, err := conn.Read(rctx)
	if err != nil {
		return false
	}
	var m struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	r := &http.Request{Header: http.Header{"Authorization": {"Bearer " + m.Token}}}
	return a.tokenOK(r)
}

// snapshot gathers what the dashboard shows; a part that fails is left
// empty rather than failing the push.
func (a *API) snapshot(ctx context.Context) snapshot {
	s := snapshot{Time: time.Now(), Workers: a.engine.Workers(), Totals: a.engine.Totals(), Token: a.cfg.Token != ""}
	slices.SortFunc(s.Workers, func(x, y engine.WorkerInfo) int { return x.Connected.Compare(y.Connected) })
	if sts, err := a.engine.Jobs(ctx); err == nil {
		sts = sts[:min(len(sts), dashboardMaxJobs)]
		s.Jobs = make([]jobJSON, len(sts))
		for i, st := range sts {
			s.Jobs[i] = jobView(st)
		}
	}
	if qs, err := a.broker.List(ctx); err == nil {
		s.Queues = busiestQueues(qs, dashboardMaxQueue)
	}
	if s.Jobs == nil {
		s.Jobs = []jobJSON{}
	}
	if s.Queues == nil {
		s.Queues = []broker.Stats{}
	}
	return s
}

// busiestQueues keeps at most n queues: every queue with messages waiting,
// in flight or dead first, then the others by name. A dead-letter queue
// counts as busy when it holds messages, so the page can show them.
func busiestQueues(qs []broker.Stats, n int) []broker.Stats {
	busy := func(q broker.Stats) int {
		if q.Length+q.InFlight+q.Dead > 0 {
			return 0
		}
		return 1
	}
	slices.SortFunc(qs, func(x, y broker.Stats) int {
		return cmp.Or(cmp.Compare(busy(x), busy(y)), strings.Compare(x.Name, y.Name))
	})
	return qs[:min(len(qs), n)]
}
