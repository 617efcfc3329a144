package httpapi

import (
	"crypto/subtle"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// auth returns middleware that requires the bearer token when one is set.
// For read routes (read true) a name matching Config.PublicRead is let
// through without it.
func (a *API) auth(read bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if a.cfg.Token == "" || (read && a.public(c)) || a.tokenOK(c.Request()) {
				return next(c)
			}
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="tabreduce"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "this route needs Authorization: Bearer <token>")
		}
	}
}

func (a *API) tokenOK(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(a.cfg.Token)) == 1
}

// public reports whether the route's queue, channel or key name matches a
// PublicRead pattern; routes without a name are public only under "*".
func (a *API) public(c echo.Context) bool {
	name := c.Param("queue")
	if name == "" {
		name = c.Param("channel")
	}
	if name == "" {
		name = c.Param("*")
	}
	if name == "" {
		name = c.QueryParam("queue")
	}
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
