package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// push is POST /q/{queue}: form field value (or msg), or a raw body.
func (a *API) push(c echo.Context) error {
	m, err := messageFromRequest(c, "value", "msg")
	if err != nil {
		return err
	}
	return a.pushOne(c, c.Param("queue"), m)
}

// pushOne pushes and answers with the key as text, or JSON when asked.
func (a *API) pushOne(c echo.Context, queue string, m broker.NewMessage) error {
	msgs, err := a.broker.Push(c.Request().Context(), queue, []broker.NewMessage{m})
	if err != nil {
		return err
	}
	key := msgs[0].Key()
	if wantsJSON(c.Request()) {
		return c.JSON(http.StatusOK, map[string]string{"key": key})
	}
	return c.String(http.StatusOK, key)
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// take is GET /q/{queue}: hard get, 204 when empty (or paused).
func (a *API) take(c echo.Context) error {
	if err := a.checkCallback(c); err != nil {
		return err
	}
	m, err := a.broker.Take(c.Request().Context(), c.Param("queue"))
	if err := emptyAs(c, err, http.StatusNoContent); err != nil || m.ID == 0 {
		return err
	}
	return a.respondJSON(c, http.StatusOK, toMessageJSON(m))
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

// listQueues is GET /q: the queue names.
func (a *API) listQueues(c echo.Context) error {
	qs, err := a.broker.List(c.Request().Context())
	if err != nil {
		return err
	}
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.Name
	}
	return a.respondJSON(c, http.StatusOK, names)
}

// purge is DELETE /q/{queue}.
func (a *API) purge(c echo.Context) error {
	q := c.Param("queue")
	if err := a.broker.Purge(c.Request().Context(), q); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"queue": q, "purged": true})
}

// root is GET /: the landing page, or with ?queue= RestMQ's hard get that
// answers 404 when the queue is empty.
func (a *API) root(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return badRequest("malformed query: %v", err)
	}
	q := c.QueryParam("queue")
	if q == "" {
		return c.HTMLBlob(http.StatusOK, a.landing)
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
		return a.respondJSON(c, http.StatusOK, toMessageJSON(m))
	})(c)
}

// rootAdd is POST /: queue= and value= (or msg=).
func (a *API) rootAdd(c echo.Context) error {
	if err := parseForm(c); err != nil {
		return err
	}
	q, ok := formValue(c.Request(), "queue")
	if !ok {
		return badRequest("form field queue is required")
	}
	m, err := messageFromRequest(c, "value", "msg")
	if err != nil {
		return err
	}
	return a.pushOne(c, q, m)
}

// protocolCmd is one command of RestMQ's JSON protocol.
type protocolCmd struct {
	Cmd   string          `json:"cmd"`
	Queue string          `json:"queue"`
	Value json.RawMessage `json:"value"`
	Key   string          `json:"key"`
	TTL   float64         `json:"ttl"`
}

// jsonProtocol is POST /queue: the JSON in form field body (or msg), or a
// raw JSON body.
func (a *API) jsonProtocol(c echo.Context) error {
	raw, err := protocolBody(c)
	if err != nil {
		return err
	}
	cmd, err := parseProtocolCmd(raw)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	switch cmd.Cmd {
	case "add":
		ttl, err := seconds("ttl", cmd.TTL)
		if err != nil {
			return err
		}
		return a.pushOne(c, cmd.Queue, broker.NewMessage{Value: protocolValue(cmd.Value), TTL: ttl})
	case "get", "take":
		get := a.broker.Peek
		if cmd.Cmd == "take" {
			get = a.broker.Take
		}
		m, err := get(ctx, cmd.Queue)
		if err := emptyAs(c, err, http.StatusNoContent); err != nil || m.ID == 0 {
			return err
		}
		return c.JSON(http.StatusOK, toMessageJSON(m))
	case "del":
		if err := a.broker.Delete(ctx, cmd.Key); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"key": cmd.Key, "deleted": true})
	}
	return badRequest("unknown cmd %q: want add, get, take or del", truncate(cmd.Cmd, 32))
}

func protocolBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if isForm(r) {
		if err := parseForm(c); err != nil {
			return nil, err
		}
		v, ok := formValue(r, "body", "msg")
		if !ok {
			return nil, badRequest("form field body (or msg) with the JSON command is required")
		}
		return []byte(v), nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// parseProtocolCmd decodes and checks one JSON-protocol command.
func parseProtocolCmd(raw []byte) (protocolCmd, error) {
	var cmd protocolCmd
	if err := json.Unmarshal(raw, &cmd); err != nil {
		return cmd, badRequest("malformed JSON command: %v", err)
	}
	switch cmd.Cmd {
	case "add", "get", "take":
		if err := broker.CheckQueueName(cmd.Queue); err != nil {
			return cmd, err
		}
	case "del":
		if _, _, err := broker.ParseKey(cmd.Key); err != nil {
			return cmd, err
		}
	case "":
		return cmd, badRequest(`the JSON command needs "cmd": add, get, take or del`)
	}
	if cmd.Cmd == "add" && len(cmd.Value) == 0 {
		return cmd, badRequest(`add needs "value"`)
	}
	return cmd, nil
}

// protocolValue is the message of an add: a JSON string's text, or any other
// JSON value as its JSON text.
func protocolValue(v json.RawMessage) []byte {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return []byte(s)
	}
	return []byte(v)
}
