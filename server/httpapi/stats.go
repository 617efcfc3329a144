package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

var callbackRE = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$`)

// callback returns the request's JSONP callback when --jsonp is on and the
// request is a GET with a ?callback= (checked by checkCallback), else "".
func (a *API) callback(c echo.Context) string {
	if !a.cfg.JSONP || c.Request().Method != http.MethodGet {
		return ""
	}
	return c.QueryParam("callback")
}

// respondJSON writes v as JSON, or as JSONP when enabled and the request has
// a valid ?callback=.
func (a *API) respondJSON(c echo.Context, status int, v any) error {
	cb := a.callback(c)
	if cb == "" {
		return c.JSON(status, v)
	}
	if err := a.checkCallback(c); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Blob(status, "application/javascript; charset=UTF-8", []byte(cb+"("+string(b)+");"))
}

// checkCallback refuses a malformed ?callback= (when JSONP is on). Handlers
// that remove a message call it first, so a refused request takes nothing.
func (a *API) checkCallback(c echo.Context) error {
	if cb := a.callback(c); cb != "" && !callbackRE.MatchString(cb) {
		return badRequest("callback must be a JavaScript identifier")
	}
	return nil
}

// queueEntry is one queue in /stats: RestMQ's name, len, status and policy
// (status and policy in words; see broker.Stats), and our figures.
type queueEntry struct {
	Len int64 `json:"len"`
	broker.Stats
}

// allStats is GET /stats and /stats/: RestMQ's {"queues": {name: entry},
// "count": n}, and our uptime.
func (a *API) allStats(c echo.Context) error {
	qs, err := a.broker.List(c.Request().Context())
	if err != nil {
		return err
	}
	byName := make(map[string]queueEntry, len(qs))
	for _, q := range qs {
		byName[q.Name] = queueEntry{Len: q.Length, Stats: q}
	}
	return a.respondJSON(c, http.StatusOK, map[string]any{
		"queues":         byName,
		"count":          len(qs),
		"uptime_seconds": a.uptime(),
	})
}

// queueStats is GET /stats/{queue}: RestMQ's {"queue": name, "len": n} with
// our figures beside them. A queue that does not exist has len 0.
func (a *API) queueStats(c echo.Context) error {
	q := c.Param("queue")
	st, err := a.broker.Stats(c.Request().Context(), q)
	if errors.Is(err, broker.ErrQueueNotFound) {
		s, p, serr := a.broker.QueueState(c.Request().Context(), q)
		st, err = broker.Stats{QueueInfo: broker.QueueInfo{Name: q, Status: s, Policy: p}, Consumers: a.broker.Consumers(q)}, serr
	}
	if err != nil {
		return err
	}
	return a.respondJSON(c, http.StatusOK, struct {
		Queue string `json:"queue"`
		queueEntry
		Uptime float64 `json:"uptime_seconds"`
	}{q, queueEntry{Len: st.Length, Stats: st}, a.uptime()})
}

func (a *API) uptime() float64 { return time.Since(a.started).Round(time.Millisecond).Seconds() }

// setPolicy is POST /p/{queue} policy=broadcast|roundrobin; it answers
// "OK\r\n", as RestMQ passes on Redis's answer to SET.
func (a *API) setPolicy(c echo.Context) error {
	if err := parseForm(c); err != nil {
		return err
	}
	v, _ := formValue(c.Request(), "policy")
	p, err := broker.ParsePolicy(v)
	if err != nil {
		return err
	}
	if err := a.broker.SetPolicy(c.Request().Context(), c.Param("queue"), p); err != nil {
		return err
	}
	return restmqText(c, "OK")
}

// getPolicy is GET /p/{queue}: {"queue": q, "value": "broadcast"}.
func (a *API) getPolicy(c echo.Context) error {
	if err := a.checkCallback(c); err != nil {
		return err
	}
	_, p, err := a.broker.QueueState(c.Request().Context(), c.Param("queue"))
	if err != nil {
		return err
	}
	return a.restmqJSON(c, struct {
		Queue string `json:"queue"`
		Value string `json:"value"`
	}{c.Param("queue"), string(p)})
}

// RestMQ's codes of a queue's status (core.py's STARTQUEUE and STOPQUEUE):
// /control reports them as numbers.
const (
	restmqStart = 1
	restmqStop  = 0
)

// controlState is a queue's status as core.py's queue_status gives it.
type controlState struct {
	Queue  string `json:"queue"`
	Status int    `json:"status"`
}

func controlStateOf(queue string, s broker.Status) controlState {
	if s == broker.StatusPaused {
		return controlState{queue, restmqStop}
	}
	return controlState{queue, restmqStart}
}

// setControl is POST /control/{queue} status=stop|start: stop pauses
// delivery on every path (one state: paused), start resumes it. It answers
// RestMQ's {"stat": {"queue": q, "status": 0|1}}.
func (a *API) setControl(c echo.Context) error {
	if err := parseForm(c); err != nil {
		return err
	}
	v, _ := formValue(c.Request(), "status")
	var s broker.Status
	switch v {
	case "stop":
		s = broker.StatusPaused
	case "start":
		s = broker.StatusActive
	default:
		return badRequest("status must be stop or start, got %q", truncate(v, 32))
	}
	if err := a.broker.SetStatus(c.Request().Context(), c.Param("queue"), s); err != nil {
		return err
	}
	return a.restmqJSON(c, map[string]controlState{"stat": controlStateOf(c.Param("queue"), s)})
}

// getControl is GET /control/{queue}: {"queue": q, "status": {"queue": q,
// "status": 1|0}}, 1 for started and 0 for stopped as in RestMQ.
func (a *API) getControl(c echo.Context) error {
	if err := a.checkCallback(c); err != nil {
		return err
	}
	q := c.Param("queue")
	s, _, err := a.broker.QueueState(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return a.restmqJSON(c, struct {
		Queue  string       `json:"queue"`
		Status controlState `json:"status"`
	}{q, controlStateOf(q, s)})
}

// allControl is GET /control/: every queue's status, {"queues": {name:
// {"queue": name, "status": 1|0}}, "count": n}.
func (a *API) allControl(c echo.Context) error {
	if err := a.checkCallback(c); err != nil {
		return err
	}
	qs, err := a.broker.List(c.Request().Context())
	if err != nil {
		return err
	}
	byName := make(map[string]controlState, len(qs))
	for _, q := range qs {
		byName[q.Name] = controlStateOf(q.Name, q.Status)
	}
	return a.restmqJSON(c, struct {
		Queues map[string]controlState `json:"queues"`
		Count  int                     `json:"count"`
	}{byName, len(qs)})
}
