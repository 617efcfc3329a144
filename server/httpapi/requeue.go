package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Requeue limits: the messages one request moves, by default and at most.
const (
	defaultRequeue = 10_000
	maxRequeue     = 100_000
)

// requeue is POST /api/v1/queues/{queue}/requeue?limit=N: the dead-letter
// queue's messages, oldest first and at most N (default 10,000), go back to
// the queue it serves, as new messages. The answer says how many moved:
// {"queue", "into", "requeued"}.
func (a *API) requeue(c echo.Context) error {
	queue, limit := c.Param("queue"), defaultRequeue
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRequeue {
			return badRequest("limit must be between 1 and %d, got %q", maxRequeue, truncate(v, 32))
		}
		limit = n
	}
	origin, ok := broker.DeadLetterOf(queue)
	if !ok {
		return badRequest("%q is not a dead-letter queue: requeue moves the messages of QUEUE.dead back to QUEUE", truncate(queue, 60))
	}
	n, err := a.broker.Requeue(c.Request().Context(), queue, limit)
	if err != nil && n == 0 {
		return err
	}
	if err != nil {
		a.log.Warn("requeue stopped early", "queue", queue, "requeued", n, "err", err)
	}
	return c.JSON(http.StatusOK, map[string]any{"queue": queue, "into": origin, "requeued": n})
}
