package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
)

// originAllowed reports whether a request may be served to the page it
// comes from: it has no Origin (not a browser page, or same-origin for some
// requests), its Origin is this server's own host, or Config.AllowOrigins
// lists it. It is the one check of cross-origin access.
func (a *API) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	for _, p := range a.cfg.AllowOrigins {
		if p == "*" || strings.EqualFold(p, o) {
			return true
		}
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, p := range a.cfg.AllowOrigins {
		target := strings.ToLower(u.Host)
		if strings.Contains(p, "://") {
			target = origin
		}
		if ok, _ := path.Match(strings.ToLower(p), target); ok {
			return true
		}
	}
	return false
}

// allowCORS lets an allowed cross-origin page read a live stream (COMET,
// Server-Sent Events): it names the page's origin in
// Access-Control-Allow-Origin, with credentials so that cookies count.
func (a *API) allowCORS(c echo.Context) {
	r := c.Request()
	o := r.Header.Get("Origin")
	if o == "" || !a.originAllowed(r) {
		return
	}
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Origin", o)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
}

// checkStreamOrigin refuses a live stream (COMET, Server-Sent Events) to
// a page of an origin we do not allow: it could not read the stream, but
// the messages written to it would be gone all the same.
func (a *API) checkStreamOrigin(c echo.Context) error {
	if a.originAllowed(c.Request()) {
		return nil
	}
	return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("stream for origin %q refused: only pages of this server, or of an origin --allow-origin lists, may read it", truncate(c.Request().Header.Get("Origin"), 80)))
}

// acceptWebSocket checks a WebSocket handshake (checkUpgrade) and accepts
// it. When conn is nil the handler returns err: the check's error, or nil
// when websocket.Accept has answered the request itself.
func (a *API) acceptWebSocket(c echo.Context) (*websocket.Conn, error) {
	if err := a.checkUpgrade(c); err != nil {
		return nil, err
	}
	// checkUpgrade has applied our origin rule, so the library's own
	// same-origin check, which knows nothing of AllowOrigins, is skipped.
	conn, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil, nil // Accept has answered the request
	}
	return conn, nil
}
