package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server"
)

// A web page of another site, open in the operator's browser, must not
// change the state of a server it can reach: the browser sends its
// requests with an Origin (or, for plain GETs, Sec-Fetch-Site), and the
// server refuses them. These are the reproductions of cross-site request
// forgery on the documented default (loopback, no token).

// crossSite are the headers a browser sends on a page's request to a server
// of another origin.
var crossSite = []struct {
	name   string
	header []string
}{
	{"other origin", []string{"Origin", "http://evil.example"}},
	{"other port of the same host", []string{"Origin", "http://127.0.0.1:1"}},
	{"opaque origin", []string{"Origin", "null"}},
	{"cross-site GET", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors"}},
	{"same-site GET", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors"}},
}

// sendWith sends r with the header pairs.
func (s *testServer) sendWith(r route, header ...string) response {
	s.t.Helper()
	h := append([]string{"Content-Type", r.ctype}, header...)
	return s.do(r.method, r.path, strings.NewReader(r.body), h...)
}

// stateRoutes change state: every write route, a module upload and a job
// submission (as a form, which any page may send), and the GETs that take
// messages.
var stateRoutes = append(writeRoutes[:len(writeRoutes):len(writeRoutes)],
	route{"POST", "/api/v1/jobs", "multipart/form-data; boundary=b",
		"--b\r\nContent-Disposition: form-data; name=\"module\"\r\n\r\nnoop\r\n--b\r\nContent-Disposition: form-data; name=\"input\"; filename=\"x\"\r\n\r\nx\n\r\n--b--\r\n"},
	route{"POST", "/api/v1/modules", "text/plain", "\x00asm\x01\x00\x00\x00"},
	route{"GET", "/q/pub.x", "", ""},
	route{"GET", "/?queue=pub.x", "", ""},
	route{"GET", "/c/pub.x", "", ""},
)

func TestCrossSiteRequestsRefused(t *testing.T) {
	s := startServer(t, server.Config{})
	s.push("pub.x", "keep me")
	for _, from := range crossSite {
		t.Run(from.name, func(t *testing.T) {
			for _, r := range stateRoutes {
				if r.path == "/metrics" {
					continue // a read
				}
				s.sendWith(r, from.header...).wantError(t, http.StatusForbidden, "refused")
			}
		})
	}
	// Nothing was done: the message is there, no key was written, no job
	// was submitted.
	if st := s.stats("pub.x"); st.Length != 1 {
		t.Errorf("pub.x: %d messages, want the 1 pushed before", st.Length)
	}
	s.get("/kv/pub.x").wantError(t, http.StatusNotFound)
	if l := decode[struct{ Jobs []any }](t, s.get("/api/v1/jobs").want(t, http.StatusOK)); len(l.Jobs) != 0 {
		t.Errorf("jobs were submitted: %v", l.Jobs)
	}
	if m := s.take("pub.x"); string(m.Value) != "keep me" {
		t.Errorf("took %q, want the message pushed before", m.Value)
	}
}

func TestSameSiteAndScriptsStillWrite(t *testing.T) {
	s := startServer(t, server.Config{})
	allowed := []struct {
		name   string
		header []string
	}{
		{"no browser headers (curl, scripts, the CLI)", nil},
		{"same origin", []string{"Origin", s.URL()}},
		{"same-origin fetch metadata", []string{"Sec-Fetch-Site", "same-origin"}},
		{"typed by the user", []string{"Sec-Fetch-Site", "none"}},
	}
	for _, a := range allowed {
		t.Run(a.name, func(t *testing.T) {
			r := route{"POST", "/q/ok", "application/x-www-form-urlencoded", "value=v"}
			s.sendWith(r, a.header...).want(t, http.StatusOK)
			s.sendWith(route{"GET", "/q/ok", "", ""}, a.header...).want(t, http.StatusOK)
		})
	}
	t.Run("an origin --allow-origin lists", func(t *testing.T) {
		s := startServer(t, server.Config{AllowOrigins: []string{"http://friend.example"}})
		r := route{"POST", "/q/ok", "application/x-www-form-urlencoded", "value=v"}
		s.sendWith(r, "Origin", "http://friend.example").want(t, http.StatusOK)
		s.sendWith(r, "Origin", "http://evil.example").wantError(t, http.StatusForbidden)
	})
	t.Run("JSONP, when the operator turns it on", func(t *testing.T) {
		s := startServer(t, server.Config{JSONP: true})
		s.push("j", "v")
		r := route{"GET", "/q/j?callback=f", "", ""}
		s.sendWith(r, "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Dest", "script").want(t, http.StatusOK)
		s.push("j", "v")
		s.sendWith(route{"GET", "/q/j", "", ""}, "Sec-Fetch-Site", "cross-site").wantError(t, http.StatusForbidden)
	})
}

// jsonRoutes parse their body as JSON.
var jsonRoutes = []route{
	{"POST", "/kv/mset", "", `{"k":1}`},
	{"POST", "/kv/mget", "", `["k"]`},
	{"PUT", "/kv/k", "", `{"a":1}`},
	{"POST", "/api/v1/queues/j/messages", "", `["v"]`},
	{"POST", "/api/v1/queues/j/ack", "", `{"lease":"1"}`},
	{"POST", "/api/v1/jobs", "", `{"module":"noop","input":"x\n"}`},
}

func TestJSONRoutesTakeJSONFromBrowsers(t *testing.T) {
	s := startServer(t, server.Config{})
	page := []string{"Origin", s.URL()} // even the server's own pages
	for _, r := range jsonRoutes {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
			r.ctype = ct
			s.sendWith(r, page...).wantError(t, http.StatusUnsupportedMediaType, "application/json")
		}
		r.ctype = "application/json"
		if got := s.sendWith(r, page...); got.Status == http.StatusUnsupportedMediaType {
			t.Errorf("%v: JSON sent as application/json refused", got)
		}
		// curl -d sends a form type: scripts work as they did.
		r.ctype = "application/x-www-form-urlencoded"
		if got := s.sendWith(r); got.Status == http.StatusUnsupportedMediaType {
			t.Errorf("%v: a script's JSON refused", got)
		}
	}
}

// A page whose name the attacker controls can point that name at
// 127.0.0.1 once it is loaded (DNS rebinding): to the browser its requests
// are then same-origin, and Host is all that tells them apart.
func TestHostCheck(t *testing.T) {
	s := startServer(t, server.Config{})
	port := s.Addr()[strings.LastIndex(s.Addr(), ":"):]
	for _, host := range []string{"attacker.example" + port, "attacker.example", "127.0.0.1.attacker.example" + port} {
		s.get("/q", "Host", host).wantError(t, http.StatusForbidden, "host")
		s.get("/stats", "Host", host, "Origin", "http://"+host).wantError(t, http.StatusForbidden, "host")
	}
	// The dashboard's socket refuses the handshake.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/api/v1/ws/dashboard", &websocket.DialOptions{
		HTTPClient: httpClient, Host: "attacker.example" + port, HTTPHeader: http.Header{"Origin": {"http://attacker.example" + port}},
	})
	if err == nil {
		c.CloseNow()
		t.Fatal("dashboard socket opened for a rebound name")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("dashboard socket for a rebound name: want 403, got %v", resp)
	}
	for _, host := range []string{"127.0.0.1" + port, "localhost" + port, "[::1]" + port, "tab.localhost" + port, "LOCALHOST" + port, "10.1.2.3" + port} {
		s.get("/q", "Host", host).want(t, http.StatusOK)
	}
	t.Run("--allow-host", func(t *testing.T) {
		s := startServer(t, server.Config{AllowHosts: []string{"*.example.com", "box"}})
		for _, host := range []string{"app.example.com" + port, "box" + port, "127.0.0.1" + port} {
			s.get("/q", "Host", host).want(t, http.StatusOK)
		}
		s.get("/q", "Host", "example.com.evil"+port).wantError(t, http.StatusForbidden)
	})
	t.Run("with a token", func(t *testing.T) {
		s := startServer(t, server.Config{Token: testToken})
		// A rebound page has no token: any name may reach the server.
		s.get("/q", "Host", "tabreduce.example.org").want(t, http.StatusOK)
		s.as("").get("/q", "Host", "tabreduce.example.org").wantError(t, http.StatusUnauthorized)
	})
}

// No page of ours may be framed by another site (clickjacking the
// dashboard's buttons), and pages run only this server's scripts; the
// volunteer page alone may be framed by the sites --allow-origin names.
func TestPagesRefuseFraming(t *testing.T) {
	s := startServer(t, server.Config{})
	for _, p := range []string{"/dashboard", "/worker", "/static/index.html", "/static/help.html", "/q/", "/j/x"} {
		r := s.get(p).want(t, http.StatusOK)
		if got := r.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options %q, want DENY", p, got)
		}
		csp := r.Header.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'none'", "script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		script, _, _ := strings.Cut(csp[strings.Index(csp, "script-src"):], ";")
		if strings.Contains(script, "unsafe-inline") || strings.Contains(script, "'unsafe-eval'") {
			t.Errorf("%s: %q lets any inline script or eval run", p, script)
		}
	}
	f := startServer(t, server.Config{AllowOrigins: []string{"https://friend.example", "null"}})
	r := f.get("/worker").want(t, http.StatusOK)
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' https://friend.example") || strings.Contains(csp, "null") {
		t.Errorf("/worker with --allow-origin: CSP %q, want it framed by the friend alone", csp)
	}
	if xfo := r.Header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("/worker with --allow-origin: X-Frame-Options %q would refuse the friend", xfo)
	}
	if xfo := f.get("/dashboard").Header.Get("X-Frame-Options"); xfo != "DENY" {
		t.Errorf("/dashboard with --allow-origin: X-Frame-Options %q, want DENY", xfo)
	}
}
