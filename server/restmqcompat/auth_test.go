package restmqcompat

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

const token = "lero-token"

// TestBasicAuth follows RestMQ's ACL (assets/acl.conf): producers and
// consumers authenticate with HTTP Basic. The token is the password; any
// user name will do. Without it the server challenges with Basic, which is
// what urllib2's HTTPBasicAuthHandler waits for before it sends anything.
func TestBasicAuth(t *testing.T) {
	s := start(t, server.Config{Token: token})
	r := s.call("POST", "/q/test", formType, "value=x")
	if r.status != http.StatusUnauthorized || !hasChallenge(r.header, `Basic realm="tabreduce"`) {
		t.Errorf("without credentials: want 401 with a Basic challenge, got %d %q", r.status, r.header.Values("WWW-Authenticate"))
	}
	basic := func(user, pass string) string {
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(user, pass)
		return req.Header.Get("Authorization")
	}
	s.call("POST", "/q/test", formType, "value=x", "Authorization", basic("lero", token)).want(t, "Basic producer", 200, "test:1\r\n")
	s.call("GET", "/q/test", "", "", "Authorization", basic("zz", token)).want(t, "Basic consumer", 200, `{"key":"test:1","value":"x","count":0}`+"\r\n")
	if r := s.call("GET", "/q/test", "", "", "Authorization", basic("lero", "wrong")); r.status != http.StatusUnauthorized {
		t.Errorf("wrong password: want 401, got %d", r.status)
	}
	// A page's own fetch is not offered the Basic challenge (no prompt).
	if r := s.call("GET", "/q/test", "", "", "Sec-Fetch-Mode", "cors"); hasChallenge(r.header, `Basic realm="tabreduce"`) {
		t.Errorf("a page's fetch: want no Basic challenge, got %q", r.header.Values("WWW-Authenticate"))
	}
}

// TestCookieAuth: RestMQ's WebSocket consumers cannot set headers, so the
// page sets document.cookie = "auth=user:password". The cookie counts on
// WebSocket handshakes only, never on other requests (which a cross-site
// form could send with it).
func TestCookieAuth(t *testing.T) {
	s := start(t, server.Config{Token: token})
	if _, err := s.tryWS("/ws/test", nil); err == nil || err.(*refusal).status != http.StatusUnauthorized {
		t.Errorf("WebSocket without the cookie: want 401, got %v", err)
	}
	for _, cookie := range []string{"auth=lerr:" + token, "auth=" + url.QueryEscape("lerr:"+token), "auth=" + token} {
		ws := s.dialWS(t, "/ws/test", http.Header{"Cookie": {cookie}})
		ws.send(t, "ping")
		if got := ws.read(t); got != "ping" {
			t.Errorf("%s: want the echo, got %q", cookie, got)
		}
	}
	if _, err := s.tryWS("/ws/test", http.Header{"Cookie": {"auth=lerr:wrong"}}); err == nil {
		t.Errorf("a wrong cookie: want the WebSocket refused")
	}
	if r := s.call("POST", "/q/test", formType, "value=x", "Cookie", "auth=lerr:"+token); r.status != http.StatusUnauthorized {
		t.Errorf("the cookie on a plain POST: want 401, got %d", r.status)
	}
}

func hasChallenge(h http.Header, want string) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		if v == want {
			return true
		}
	}
	return false
}
