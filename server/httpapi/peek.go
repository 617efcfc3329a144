package httpapi

import (
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Peek limits: messages per page, and the bytes of a value shown (a longer
// one is cut, and says so).
const (
	defaultPeek  = 20
	maxPeek      = 100
	maxPeekValue = 4 << 10
)

// peekJSON is a waiting message as GET /api/v1/queues/{queue}/messages
// shows it: what a person looking into a queue (a dead-letter queue above
// all) wants to see, without taking it.
type peekJSON struct {
	Key      string     `json:"key"`
	Value    string     `json:"value"`
	Encoding string     `json:"encoding,omitempty"`
	Size     int        `json:"size"`                // bytes of the whole value
	Cut      bool       `json:"truncated,omitempty"` // Value holds its first maxPeekValue bytes
	Count    int64      `json:"count"`
	Attempts int        `json:"attempts"`
	Error    string     `json:"error,omitempty"` // the last error a consumer gave
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
}

// peekMessages is GET /api/v1/queues/{queue}/messages?after=ID&limit=N:
// the waiting messages after id ID (default 0), oldest first, at most N
// (default 20, at most 100), neither counted nor leased. "next_after", when
// present, pages on.
func (a *API) peekMessages(c echo.Context) error {
	queue := c.Param("queue")
	after, limit := uint64(0), defaultPeek
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badRequest("after must be a message id, got %q", truncate(v, 32))
		}
		after = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPeek {
			return badRequest("limit must be between 1 and %d, got %q", maxPeek, truncate(v, 32))
		}
		limit = n
	}
	msgs, err := a.broker.Scan(c.Request().Context(), queue, after, limit)
	if err != nil {
		return err
	}
	out := make([]peekJSON, len(msgs))
	for i, m := range msgs {
		out[i] = toPeekJSON(m)
	}
	body := map[string]any{"queue": queue, "messages": out}
	if len(msgs) == limit {
		body["next_after"] = msgs[len(msgs)-1].ID
	}
	return c.JSON(http.StatusOK, body)
}

func toPeekJSON(m broker.Message) peekJSON {
	p := peekJSON{Key: m.Key(), Size: len(m.Value), Count: m.Count, Attempts: m.Attempts, Error: m.Error, Created: m.Created}
	v := m.Value
	if len(v) > maxPeekValue {
		cut := maxPeekValue
		if utf8.Valid(v) { // keep text as text: cut between characters
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
		}
		v, p.Cut = v[:cut], true
	}
	p.Value, p.Encoding = encodeValue(v)
	if !m.Expires.IsZero() {
		p.Expires = &m.Expires
	}
	return p
}
