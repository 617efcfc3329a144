package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
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

// pageAllowed reports whether a request that a browser may have sent on
// behalf of a page passes the origin rule: with an Origin header, that
// origin must be allowed (originAllowed); without one, the browser's
// Sec-Fetch-Site must not say that another site's page sent it. Browsers
// leave Origin out of plain GETs (an image, a script, a link), so a
// request that changes state must pass this, not originAllowed alone.
// Clients that are not browsers send neither header and pass.
func (a *API) pageAllowed(r *http.Request) bool {
	if r.Header.Get("Origin") != "" {
		return a.originAllowed(r)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none": // "none": the user typed the URL or followed a bookmark
		return true
	}
	return slices.Contains(a.cfg.AllowOrigins, "*")
}

// fromBrowser reports whether a browser sent the request: it carries an
// Origin or the Fetch Metadata headers that every current browser sends.
func fromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Sec-Fetch-Mode") != ""
}

// checkPage refuses, with a 403, a request that changes state (a write, or
// a GET that takes messages) from a page the origin rule does not allow:
// cross-site request forgery. With JSONP on, a GET that asks for a
// callback is let through, since --jsonp means that any page may read
// (and so take) messages.
func (a *API) checkPage(c echo.Context) error {
	r := c.Request()
	if a.pageAllowed(r) {
		return nil
	}
	if a.cfg.JSONP && r.Method == http.MethodGet && c.QueryParam("callback") != "" {
		return nil
	}
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Sec-Fetch-Site") + " page"
	}
	return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("request from %q refused: only pages of this server, or of an origin --allow-origin lists, may change its state", truncate(from, 80)))
}

// guardPages is middleware that applies checkPage to every request that
// changes state: every method but GET, HEAD and OPTIONS, and the GET routes
// that take messages (headSkips).
func (a *API) guardPages(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			if !skipsHead(c) {
				return next(c)
			}
		}
		if err := a.checkPage(c); err != nil {
			return err
		}
		return next(c)
	}
}

// checkJSONType refuses a JSON body from a browser that was not sent as
// Content-Type application/json (or a +json type): a page of any origin
// may send text/plain or a form without asking, but not JSON, so a JSON
// route that took any type would be open to every page a browser shows.
// Clients that are not browsers (curl -d sends a form type) are not held
// to it.
func checkJSONType(r *http.Request) error {
	mt := mediaType(r)
	if mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json") || !fromBrowser(r) {
		return nil
	}
	return echo.NewHTTPError(http.StatusUnsupportedMediaType, fmt.Sprintf("a JSON body from a browser needs Content-Type: application/json, got %q", truncate(mt, 64)))
}

// hostAllowed reports whether a request's Host names this server in a way
// that no other site can borrow: an IP address, localhost or a name under
// .localhost, or a name Config.AllowHosts lists. A web page can make a
// browser send any name it controls, and point that name at 127.0.0.1 once
// the page is loaded (DNS rebinding): its requests are then same-origin to
// the browser, and only the Host header tells them apart.
func (a *API) hostAllowed(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	if name == "" {
		return false
	}
	if net.ParseIP(name) != nil || name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	for _, p := range a.cfg.AllowHosts {
		if ok, _ := path.Match(strings.ToLower(p), name); ok || p == "*" {
			return true
		}
	}
	return false
}

// checkHost is Pre middleware: on a server without a token (where a
// rebound page would need nothing else), or wherever AllowHosts is set, a
// request whose Host is not allowed (hostAllowed) is refused with a 403.
func (a *API) checkHost(next echo.HandlerFunc) echo.HandlerFunc {
	if a.cfg.Token != "" && len(a.cfg.AllowHosts) == 0 {
		return next
	}
	return func(c echo.Context) error {
		if h := c.Request().Host; !a.hostAllowed(h) {
			return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("host %q refused: this server answers to IP addresses, localhost and the names --allow-host lists", truncate(h, 80)))
		}
		return next(c)
	}
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
	if a.pageAllowed(c.Request()) {
		return nil
	}
	return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("stream for origin %q refused: only pages of this server, or of an origin --allow-origin lists, may read it", truncate(c.Request().Header.Get("Origin"), 80)))
}

// acceptWebSocket checks a WebSocket handshake (checkUpgrade) and accepts
// it. When conn is nil the handler returns err: the check's error, or nil
// when websocket.Accept has answered the request itself.
func (a *API) acceptWebSocket(c echo.Context) (*websocket.Conn, error) {
	return a.acceptWebSocketBuffers(c, 0)
}

// acceptWebSocketBuffers is acceptWebSocket with read and write buffers of
// size bytes for the socket (0: net/http's, 4 KiB each); see
// smallBuffers.
func (a *API) acceptWebSocketBuffers(c echo.Context, size int) (*websocket.Conn, error) {
	if err := a.checkUpgrade(c); err != nil {
		return nil, err
	}
	clearDeadlines(c)
	var w http.ResponseWriter = c.Response()
	if size > 0 {
		w = smallBuffers{ResponseWriter: w, size: size}
	}
	// checkUpgrade has applied our origin rule, so the library's own
	// same-origin check, which knows nothing of AllowOrigins, is skipped.
	conn, err := websocket.Accept(w, c.Request(), &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil, nil // Accept has answered the request
	}
	return conn, nil
}
