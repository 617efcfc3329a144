package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/engine"
)

// errorBody is every error response: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

// statusOf maps the domain's sentinel errors to HTTP statuses, in one place.
var statusOf = []struct {
	err    error
	status int
}{
	{broker.ErrInvalid, http.StatusBadRequest},
	{broker.ErrQueueNotFound, http.StatusNotFound},
	{broker.ErrMessageNotFound, http.StatusNotFound},
	{broker.ErrLeaseNotFound, http.StatusNotFound},
	{broker.ErrKeyNotFound, http.StatusNotFound},
	{broker.ErrClosed, http.StatusServiceUnavailable},
	{engine.ErrJobNotFound, http.StatusNotFound},
	{engine.ErrModuleNotFound, http.StatusNotFound},
	{engine.ErrNotDone, http.StatusConflict},
	{engine.ErrFinished, http.StatusConflict},
	{engine.ErrInputTooLarge, http.StatusRequestEntityTooLarge},
}

// restmqAnswer is an outcome that RestMQ reports as a success, status 200
// with {"error": "..."}: the JSON protocol's "empty queue" and "null
// resultset". RestMQ's clients look for the "error" field, not the status,
// so the RestMQ routes return it like any other error and writeError, the
// one error path, answers it in RestMQ's shape. No other error is answered
// with 200.
type restmqAnswer struct{ msg string }

func (e *restmqAnswer) Error() string { return e.msg }

// RestMQ's answers.
var (
	errRestMQEmpty  = &restmqAnswer{"empty queue"}
	errRestMQNoSuch = &restmqAnswer{"null resultset"}
	errRestMQPaused = &restmqAnswer{"queue paused"}
)

// httpStatus returns the status an error should be answered with.
func httpStatus(err error) int {
	var ra *restmqAnswer
	if errors.As(err, &ra) {
		return http.StatusOK
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he.Code
	}
	for _, m := range statusOf {
		if errors.Is(err, m.err) {
			return m.status
		}
	}
	return http.StatusInternalServerError
}

// errorHandler returns Echo's error handler: every error a handler or
// middleware returns is answered with its status and a JSON error body, and
// server errors are logged.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if httpStatus(err) >= 500 {
			log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path,
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
		}
		if c.Response().Committed {
			return
		}
		_ = writeError(c, err)
	}
}

// handleError answers errors with the default logger (for tests that build
// a bare Echo).
func handleError(err error, c echo.Context) { errorHandler(slog.Default())(err, c) }

// writeError answers with err's status and a JSON error body.
func writeError(c echo.Context, err error) error {
	var ra *restmqAnswer
	if errors.As(err, &ra) {
		return c.JSON(http.StatusOK, map[string]string{"error": ra.msg})
	}
	status := httpStatus(err)
	msg := err.Error()
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(he.Code)
		}
		if he.Internal != nil {
			msg += ": " + he.Internal.Error()
		}
	}
	if status >= 500 {
		msg = http.StatusText(status)
	}
	return c.JSON(status, errorBody{Error: msg})
}

// badRequest wraps a parse error as a 400 whose message says what was wrong.
func badRequest(format string, args ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}
