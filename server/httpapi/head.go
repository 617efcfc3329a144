package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// HEAD is answered on every GET route, as GET would be answered without
// its body: headAsGet routes a HEAD request as a GET and drops what it
// writes, and headGuard keeps a HEAD from running the GET routes that
// consume messages or stream, which answer 200 with no body instead.

// headKey marks, in the Echo context, a request that came as HEAD.
const headKey = "tabreduce.head"

// headSkips lists the GET routes a HEAD must not run: those that take
// messages off a queue (a hard get, a COMET consumer) and those that stream
// until the client leaves (a channel subscription), which a HEAD's client,
// expecting no body, would never end. WebSocket routes need no entry: a
// HEAD carries no upgrade, so they refuse it as they refuse a plain GET.
var headSkips = map[string]bool{
	"/q/:queue":     true,
	"/c/:queue":     true,
	"/pub/:channel": true,
}

// headAsGet is Pre middleware: it routes a HEAD as a GET, with a response
// writer that drops the body, and gives the request its method back
// before the server finishes the response. (Echo routes by the request the
// server passed in, so the method is changed in place.)
func headAsGet(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method != http.MethodHead {
			return next(c)
		}
		r.Method = http.MethodGet
		defer func() { r.Method = http.MethodHead }()
		res := c.Response()
		res.Writer = headWriter{res.Writer}
		c.Set(headKey, true)
		return next(c)
	}
}

// headWriter is a response writer that keeps the headers and status and
// drops the body.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(p []byte) (int, error) { return len(p), nil }

// Unwrap gives http.ResponseController the server's writer.
func (w headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// headGuard answers a HEAD on a route of headSkips with 200 and no body,
// once the route's read authorization passes, without running the route.
func (a *API) headGuard(next echo.HandlerFunc) echo.HandlerFunc {
	ok := a.auth(true)(func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	return func(c echo.Context) error {
		if head, _ := c.Get(headKey).(bool); head && skipsHead(c) {
			return ok(c)
		}
		return next(c)
	}
}

// skipsHead reports whether the routed GET is one a HEAD must not run.
func skipsHead(c echo.Context) bool {
	return headSkips[c.Path()] || c.Path() == "/" && c.QueryParam("queue") != ""
}
