package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

// Every error is answered with a JSON body {"code": ..., "error": ...}
// (api.Error): code is one of api's codes, the one vocabulary the worker
// protocol uses too, and the status follows from the code. The domain's
// sentinel errors are given their codes here, in one table.

// codeOf maps the domain's sentinel errors to codes.
var codeOf = []struct {
	err  error
	code api.Code
}{
	{broker.ErrInvalid, api.CodeInvalid},
	{broker.ErrQueueNotFound, api.CodeNotFound},
	{broker.ErrMessageNotFound, api.CodeNotFound},
	{broker.ErrLeaseNotFound, api.CodeNotFound},
	{broker.ErrKeyNotFound, api.CodeNotFound},
	{broker.ErrRecordNotFound, api.CodeNotFound},
	{broker.ErrQueuePaused, api.CodeConflict},
	{broker.ErrClosed, api.CodeUnavailable},
	{engine.ErrJobNotFound, api.CodeNotFound},
	{engine.ErrModuleNotFound, api.CodeNotFound},
	{engine.ErrNotDone, api.CodeConflict},
	{engine.ErrFinished, api.CodeConflict},
	{engine.ErrNotFinished, api.CodeConflict},
	{engine.ErrInputTooLarge, api.CodeTooLarge},
	{runner.ErrBusy, api.CodeUnavailable},
}

// statusOf is the HTTP status of each code.
var statusOf = map[api.Code]int{
	api.CodeInvalid:         http.StatusBadRequest,
	api.CodeUnauthorized:    http.StatusUnauthorized,
	api.CodeForbidden:       http.StatusForbidden,
	api.CodeNotFound:        http.StatusNotFound,
	api.CodeMethod:          http.StatusMethodNotAllowed,
	api.CodeConflict:        http.StatusConflict,
	api.CodeTooLarge:        http.StatusRequestEntityTooLarge,
	api.CodeUnsupported:     http.StatusUnsupportedMediaType,
	api.CodeUpgradeRequired: http.StatusUpgradeRequired,
	api.CodeTooMany:         http.StatusTooManyRequests,
	api.CodeInternal:        http.StatusInternalServerError,
	api.CodeUnavailable:     http.StatusServiceUnavailable,
}

// restmqAnswer is an outcome that RestMQ reports as a success, status 200
// with {"error": "..."}: the JSON protocol's "empty queue" and "null
// resultset". RestMQ's clients look for the "error" field, not the status,
// so the RestMQ routes return it like any other error and writeError, the
// one error path, answers it in RestMQ's shape (no code: it is RestMQ's). No
// other error is answered with 200.
type restmqAnswer struct{ msg string }

func (e *restmqAnswer) Error() string { return e.msg }

// RestMQ's answers.
var (
	errRestMQEmpty  = &restmqAnswer{"empty queue"}
	errRestMQNoSuch = &restmqAnswer{"null resultset"}
	errRestMQPaused = &restmqAnswer{"queue paused"}
)

// retryLater is an error the client may retry after some seconds: its
// answer carries Retry-After.
type retryLater struct {
	err   error
	after int // seconds
}

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

// codeOfStatus is the code of an echo.HTTPError's status.
func codeOfStatus(status int) api.Code {
	for c, s := range statusOf {
		if s == status {
			return c
		}
	}
	if status < 500 {
		return api.CodeInvalid
	}
	return api.CodeInternal
}

// classify returns the code and status an error is answered with.
func classify(err error) (api.Code, int) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return codeOfStatus(he.Code), he.Code
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		if st, ok := statusOf[ae.Code]; ok {
			return ae.Code, st
		}
	}
	for _, m := range codeOf {
		if errors.Is(err, m.err) {
			return m.code, statusOf[m.code]
		}
	}
	return api.CodeInternal, http.StatusInternalServerError
}

// httpStatus returns the status an error should be answered with.
func httpStatus(err error) int {
	var ra *restmqAnswer
	if errors.As(err, &ra) {
		return http.StatusOK
	}
	_, st := classify(err)
	return st
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
	status, body, retryAfter := errorAnswer(err)
	if retryAfter != "" {
		c.Response().Header().Set("Retry-After", retryAfter)
	}
	return c.JSON(status, body)
}

// errorAnswer is the answer to err: its status, its JSON body, and the
// Retry-After header's value ("" for none).
func errorAnswer(err error) (status int, body any, retryAfter string) {
	var ra *restmqAnswer
	if errors.As(err, &ra) {
		return http.StatusOK, map[string]string{"error": ra.msg}, ""
	}
	code, status := classify(err)
	if rl := (*retryLater)(nil); errors.As(err, &rl) {
		retryAfter = strconv.Itoa(rl.after)
	}
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
	if status >= 500 { // what failed inside is for the log, not the client
		msg = http.StatusText(status)
	}
	return status, api.Error{Code: code, Message: msg}, retryAfter
}

// badRequest wraps a parse error as a 400 whose message says what was wrong.
func badRequest(format string, args ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}
