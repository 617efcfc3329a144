package httpapi

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// auth returns middleware that requires the token when one is set. For read
// routes (read true) a name matching Config.PublicRead is let through
// without it. The token counts as a bearer token, as the password of HTTP
// Basic (RestMQ's ACL; any user name), and, on WebSocket handshakes only,
// as the cookie auth=user:token that RestMQ's browser consumers set, since
// a page cannot set headers on a WebSocket.
func (a *API) auth(read bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if a.cfg.Token == "" || (read && a.public(c)) || a.tokenOK(c.Request()) {
				return next(c)
			}
			h := c.Response().Header()
			h.Add("WWW-Authenticate", `Bearer realm="tabreduce"`)
			// A Basic challenge makes a browser prompt for a password:
			// offer it to navigations and non-browser clients (urllib2 sends
			// its credentials only after one), not to a page's own fetches.
			if m := c.Request().Header.Get("Sec-Fetch-Mode"); m == "" || m == "navigate" {
				h.Add("WWW-Authenticate", `Basic realm="tabreduce"`)
			}
			return echo.NewHTTPError(http.StatusUnauthorized, "this route needs Authorization: Bearer <token> (or HTTP Basic with the token as password)")
		}
	}
}

// tokenOK reports whether the request carries the token (see auth).
func (a *API) tokenOK(r *http.Request) bool {
	if a.cfg.Token == "" {
		return false
	}
	if a.authorizationOK(r.Header.Get("Authorization")) {
		return true
	}
	if isWebSocketHandshake(r) {
		return a.cookieOK(r)
	}
	return false
}

// authorizationOK reports whether an Authorization header's value carries
// the token: Bearer, or HTTP Basic with the token as password.
func (a *API) authorizationOK(h string) bool {
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return a.isToken(strings.TrimSpace(tok))
	}
	if pass, ok := basicPassword(h); ok {
		return a.isToken(pass)
	}
	return false
}

// basicPassword is the password of an HTTP Basic Authorization value, read
// as net/http's Request.BasicAuth reads it.
func basicPassword(h string) (string, bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return "", false
	}
	_, pass, ok := strings.Cut(string(raw), ":")
	return pass, ok
}

// cookieOK checks the cookie auth=user:token (or auth=token), raw or
// percent-encoded as a page's encodeURIComponent leaves it.
func (a *API) cookieOK(r *http.Request) bool {
	for _, ck := range r.Cookies() {
		if ck.Name != "auth" {
			continue
		}
		vals := []string{ck.Value}
		if v, err := url.QueryUnescape(ck.Value); err == nil && v != ck.Value {
			vals = append(vals, v)
		}
		for _, v := range vals {
			if _, pass, ok := strings.Cut(v, ":"); (ok && a.isToken(pass)) || a.isToken(v) {
				return true
			}
		}
	}
	return false
}

func (a *API) isToken(s string) bool {
	return subtle.ConstantTimeCompare([]byte(s), []byte(a.cfg.Token)) == 1
}

// isWebSocketHandshake reports whether r asks to upgrade to a WebSocket.
func isWebSocketHandshake(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

// public reports whether the route's own name (routeName) matches a
// PublicRead pattern; routes without a name are public only under "*".
func (a *API) public(c echo.Context) bool { return a.publicName(routeName(c)) }

// publicName reports whether a route's name (see public) is open to reads.
func (a *API) publicName(name string) bool {
	for _, p := range a.cfg.PublicRead {
		if p == "*" {
			return true
		}
		if name != "" {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
	}
	return false
}

// routeName is the queue, channel or key a route is about, taken from the
// route's own path: its :queue, :channel or key parameter. GET / is the one
// route whose name is in the query (RestMQ's ?queue=). No other route's
// query counts, so ?queue= cannot open a route that names nothing, or
// another name than its own, to PublicRead.
func routeName(c echo.Context) string {
	if c.Path() == "/" {
		return c.QueryParam("queue")
	}
	for _, p := range []string{"queue", "channel", "*"} {
		if v := c.Param(p); v != "" {
			return v
		}
	}
	return ""
}

// canWrite reports whether the request has write rights: the server has
// no token, or the request carries it.
func (a *API) canWrite(r *http.Request) bool { return a.cfg.Token == "" || a.tokenOK(r) }
