package httpapi

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/static"
)

// pagePolicy returns the Content-Security-Policy of a response: the pages
// run only this server's own scripts (no eval; wasm compiles, which the
// volunteer page needs; inline scripts only by the hashes of those the page
// was built with, scripts), talk only to this server, and are framed by the
// ancestors given. Inline styles are allowed: the pages use style
// attributes, which run nothing. Web Workers, whose scripts are served with
// the policy, run under it too.
func pagePolicy(scripts []string, ancestors string) string {
	src := strings.Join(append([]string{"'self'", "'wasm-unsafe-eval'"}, scripts...), " ")
	return "default-src 'self'; script-src " + src + "; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors " + ancestors
}

// securityHeaders returns middleware that sets, on every response, the CSP
// (pagePolicy) and the refusal to be framed: X-Frame-Options DENY and
// frame-ancestors 'none', so that no other site can put a page of ours
// under its own (clickjacking the dashboard's buttons). The volunteer page
// alone may be framed by the origins Config.AllowOrigins lists, so that a
// site of theirs can lend its visitors' tabs; with none listed it is
// framed by no one either. Its policy lists the scripts inlined in it.
func (a *API) securityHeaders() echo.MiddlewareFunc {
	deny := pagePolicy(nil, "'none'")
	scripts, _ := static.InlineScripts("worker.html") // embedded: cannot fail
	ancestors := "'none'"
	if anc := frameAncestors(a.cfg.AllowOrigins); anc != "" {
		ancestors = "'self' " + anc
	}
	worker := pagePolicy(scripts, ancestors)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			switch {
			case c.Path() != "/worker":
				h.Set("Content-Security-Policy", deny)
				h.Set("X-Frame-Options", "DENY")
			case ancestors == "'none'":
				h.Set("Content-Security-Policy", worker)
				h.Set("X-Frame-Options", "DENY")
			default:
				h.Set("Content-Security-Policy", worker)
			}
			return next(c)
		}
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
