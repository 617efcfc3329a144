package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// RestMQ's clients parse its answers as it writes them: a push answers the
// key as text, and a message or a state is one JSON document, each ended by
// "\r\n" (RestMQ's CustomHandler.write); JSONP wraps the document as
// "callback(...);\r\n". These helpers are the only writers of those shapes.

// restmqText answers text followed by "\r\n".
func restmqText(c echo.Context, text string) error {
	return c.Blob(http.StatusOK, echo.MIMETextPlainCharsetUTF8, []byte(text+"\r\n"))
}

// restmqJSON answers v as one JSON document followed by "\r\n", or as
// RestMQ's JSONP when --jsonp is on and the request has a valid ?callback=.
func (a *API) restmqJSON(c echo.Context, v any) error {
	if err := a.checkCallback(c); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if cb := a.callback(c); cb != "" {
		return c.Blob(http.StatusOK, "application/javascript; charset=UTF-8", []byte(cb+"("+string(b)+");\r\n"))
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, append(b, '\r', '\n'))
}

// push is POST /q/{queue}: form field value (or msg), or else the raw body.
func (a *API) push(c echo.Context) error {
	m, _, err := messageFromRequest(c, []string{"value", "msg"})
	if err != nil {
		return err
	}
	return a.pushOne(c, c.Param("queue"), m)
}

// pushOne pushes and answers with the key as RestMQ does ("queue:id\r\n"),
// or as {"key": ...} when the client asks for JSON.
func (a *API) pushOne(c echo.Context, queue string, m broker.NewMessage) error {
	msgs, err := a.broker.Push(c.Request().Context(), queue, []broker.NewMessage{m})
	if err != nil {
		return err
	}
	key := msgs[0].Key()
	if wantsJSON(c.Request()) {
		return c.JSON(http.StatusOK, map[string]string{"key": key})
	}
	return restmqText(c, key)
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// take is GET /q/{queue}: RestMQ's hard get, 204 when empty (or paused).
func (a *API) take(c echo.Context) error {
	if err := a.checkCallback(c); err != nil {
		return err
	}
	m, err := a.broker.Take(c.Request().Context(), c.Param("queue"))
	if err := emptyAs(c, err, http.StatusNoContent); err != nil || m.ID == 0 {
		return err
	}
	return a.restmqJSON(c, hardGetJSON(m))
}

// hardGetJSON is a taken message as RestMQ answers a hard get: its count is
// 0, since only soft gets count (RestMQ's refcount).
func hardGetJSON(m broker.Message) messageJSON {
	out := toMessageJSON(m)
	out.Count = 0
	return out
}

// emptyAs answers an empty or paused queue with status (and an
// X-Queue-Status header when paused); other errors pass through.
func emptyAs(c echo.Context, err error, status int) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrQueuePaused):
		c.Response().Header().Set("X-Queue-Status", string(broker.StatusPaused))
		return c.NoContent(status)
	case errors.Is(err, broker.ErrQueueEmpty):
		return c.NoContent(status)
	}
	return err
}

// listQueues is GET /q: the queue names as JSON.
func (a *API) listQueues(c echo.Context) error {
	names, err := a.queueNames(c.Request().Context())
	if err != nil {
		return err
	}
	return a.respondJSON(c, http.StatusOK, names)
}

// queueNames returns every queue's name, sorted.
func (a *API) queueNames(ctx context.Context) ([]string, error) {
	qs, err := a.broker.List(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.Name
	}
	return names, nil
}

// purge is DELETE /q/{queue}: its messages go and its live consumers are
// closed; RestMQ's answer {"queue": q, "status": 1} says there were messages
// (0: none). The queue keeps its state, and its ids go on from the last.
func (a *API) purge(c echo.Context) error {
	q := c.Param("queue")
	n, err := a.broker.Purge(c.Request().Context(), q)
	if err != nil {
		return err
	}
	status := 0
	if n > 0 {
		status = 1
	}
	return a.restmqJSON(c, struct {
		Queue  string `json:"queue"`
		Status int    `json:"status"`
	}{q, status})
}

// root is GET /: RestMQ's redirect to its index page, or with ?queue= its
// hard get that answers 404 when the queue is empty.
func (a *API) root(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return badRequest("malformed query: %v", err)
	}
	q := c.QueryParam("queue")
	if q == "" {
		return c.Redirect(http.StatusFound, IndexPath)
	}
	return a.auth(true)(func(c echo.Context) error {
		if err := a.checkCallback(c); err != nil {
			return err
		}
		m, err := a.broker.Take(c.Request().Context(), q)
		if errors.Is(err, broker.ErrQueueEmpty) || errors.Is(err, broker.ErrQueuePaused) {
			return echo.NewHTTPError(http.StatusNotFound, "queue "+q+" has no message ready")
		}
		if err != nil {
			return err
		}
		return a.restmqJSON(c, hardGetJSON(m))
	})(c)
}

// rootAdd is POST /: queue= and value= (or msg=).
func (a *API) rootAdd(c echo.Context) error {
	m, form, err := messageFromRequest(c, []string{"value", "msg"}, "queue")
	if err != nil {
		return err
	}
	q := firstValue(form, "queue")
	if q == "" {
		return badRequest("form field queue is required")
	}
	return a.pushOne(c, q, m)
}
