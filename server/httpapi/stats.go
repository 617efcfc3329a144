package httpapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

var callbackRE = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$`)

// respondJSON writes v as JSON, or as RestMQ's JSONP when enabled and the
// request has a valid ?callback=.
func (a *API) respondJSON(c echo.Context, status int, v any) error {
	cb := c.QueryParam("callback")
	if !a.cfg.JSONP || cb == "" {
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
	if cb := c.QueryParam("callback"); a.cfg.JSONP && cb != "" && !callbackRE.MatchString(cb) {
		return badRequest("callback must be a JavaScript identifier")
	}
	return nil
}

// allStats is GET /stats.
func (a *API) allStats(c echo.Context) error {
	qs, err := a.broker.List(c.Request().Context())
	if err != nil {
		return err
	}
	if qs == nil {
		qs = []broker.Stats{}
	}
	return a.respondJSON(c, http.StatusOK, map[string]any{
		"queues":         qs,
		"uptime_seconds": a.uptime(),
	})
}

// queueStats is GET /stats/{queue}.
func (a *API) queueStats(c echo.Context) error {
	st, err := a.broker.Stats(c.Request().Context(), c.Param("queue"))
	if err != nil {
		return err
	}
	return a.respondJSON(c, http.StatusOK, map[string]any{
		"queue":          st,
		"uptime_seconds": a.uptime(),
	})
}

func (a *API) uptime() float64 { return time.Since(a.started).Round(time.Millisecond).Seconds() }

// setPolicy is POST /p/{queue} policy=broadcast|roundrobin.
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
	return a.getPolicy(c)
}

// getPolicy is GET /p/{queue}.
func (a *API) getPolicy(c echo.Context) error {
	_, p, err := a.broker.QueueState(c.Request().Context(), c.Param("queue"))
	if err != nil {
		return err
	}
	return a.respondJSON(c, http.StatusOK, map[string]string{"queue": c.Param("queue"), "policy": string(p)})
}

// setControl is POST /control/{queue} status=stop|start.
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
	return a.getControl(c)
}

// getControl is GET /control/{queue}: "start" or "stop", as RestMQ says it.
func (a *API) getControl(c echo.Context) error {
	s, _, err := a.broker.QueueState(c.Request().Context(), c.Param("queue"))
	if err != nil {
		return err
	}
	word := "start"
	if s == broker.StatusPaused {
		word = "stop"
	}
	return a.respondJSON(c, http.StatusOK, map[string]string{"queue": c.Param("queue"), "status": word})
}
