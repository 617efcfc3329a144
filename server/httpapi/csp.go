package httpapi

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// pagePolicy is the Content-Security-Policy of every response: the pages
// run only this server's own scripts (no inline script, no eval; wasm
// compiles, which the volunteer page needs), talk only to this server, and
// are framed by no one. Inline styles are allowed: the pages use style
// attributes, which run nothing. The policy applies to the Web Workers too,
// whose scripts are served with it.
const pagePolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"

// securityHeaders is middleware that sets, on every response, the CSP
// (pagePolicy) and the refusal to be framed: X-Frame-Options DENY and
// frame-ancestors 'none', so that no other site can put a page of ours
// under its own (clickjacking the dashboard's buttons). The volunteer page
// alone may be framed by the origins Config.AllowOrigins lists, so that a
// site of theirs can lend its visitors' tabs; with none listed it is
// framed by no one either.
func (a *API) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	deny := pagePolicy + "; frame-ancestors 'none'"
	worker := deny
	if anc := frameAncestors(a.cfg.AllowOrigins); anc != "" {
		worker = pagePolicy + "; frame-ancestors 'self' " + anc
	}
	return func(c echo.Context) error {
		h := c.Response().Header()
		if c.Path() == "/worker" && worker != deny {
			h.Set("Content-Security-Policy", worker)
		} else {
			h.Set("Content-Security-Policy", deny)
			h.Set("X-Frame-Options", "DENY")
		}
		return next(c)
	}
}

// frameAncestors turns AllowOrigins into CSP sources: origins, patterns
// such as https://*.example.com and bare hosts are CSP sources as they
// are; "*" is any origin; "null" (file:// pages) cannot frame anything and
// is left out, as is anything that would break the header.
func frameAncestors(origins []string) string {
	var out []string
	for _, o := range origins {
		if o == "null" || o == "" || strings.IndexFunc(o, notSourceRune) >= 0 {
			continue
		}
		out = append(out, o)
	}
	return strings.Join(out, " ")
}

// notSourceRune reports whether r has no place in a CSP source: space and
// control characters (which would split one entry into several sources),
// what is not ASCII, and the separators and quotes of the header.
func notSourceRune(r rune) bool {
	return r <= ' ' || r >= 0x7f || strings.ContainsRune(";,'\"", r)
}
