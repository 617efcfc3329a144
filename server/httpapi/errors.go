package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
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
}

// httpStatus returns the status an error should be answered with.
func httpStatus(err error) int {
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

// handleError is Echo's error handler: every error a handler or middleware
// returns is answered with its status and a JSON error body.
func handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if werr := writeError(c, err); werr != nil {
		c.Logger().Error(werr)
	}
}

// writeError answers with err's status and a JSON error body.
func writeError(c echo.Context, err error) error {
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
		c.Logger().Error(err)
		msg = http.StatusText(status)
	}
	return c.JSON(status, errorBody{Error: msg})
}

// badRequest wraps a parse error as a 400 whose message says what was wrong.
func badRequest(format string, args ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}
