package httpapi

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzFastParse checks the fast path's parser against net/http's: a
// request it takes must be one net/http reads the same way (method, path,
// no query, Host, body, length) and whose every check (auth, Host) passes;
// it must never take a browser's request, nor anything net/http refuses.
func FuzzFastParse(f *testing.F) {
	for _, seed := range []string{
		"POST /q/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc",
		"GET /q/a HTTP/1.1\r\nHost: localhost:8080\r\nAuthorization: Bearer t\r\n\r\n",
		"GET /q/pub HTTP/1.1\r\nHost: [::1]:80\r\n\r\nGET /q/pub HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"POST /q/a HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nAccept: application/json\r\nContent-Length: 1\r\n\r\nx",
		"POST /q/a HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 01\r\nConnection: Keep-Alive\r\n\r\nx",
		"POST /q/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nOrigin: http://e\r\n\r\nx",
		"POST /q/a HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 1\n\nx",
		"POST /q/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nx",
		"POST /q/a HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic dTp0\r\nContent-Type: multipart/form-data\r\nContent-Length: 1\r\n\r\nx",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, token bool) {
		cfg := Config{MaxBody: 64}
		if token {
			cfg.Token, cfg.PublicRead = "t", []string{"pub*"}
		}
		fp := &FastPath{a: &API{cfg: cfg}}
		req, v := fp.parse(b)
		if v != fastTake {
			return
		}
		if req.size > len(b) || len(req.body) > 64 {
			t.Fatalf("took %d bytes of %d, a body of %d", req.size, len(b), len(req.body))
		}
		br := bufio.NewReader(bytes.NewReader(b))
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("took a request net/http refuses: %v", err)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("net/http cannot read the body: %v", err)
		}
		wantMethod := http.MethodGet
		if req.post {
			wantMethod = http.MethodPost
		}
		rest, _ := io.ReadAll(br)
		switch {
		case r.Method != wantMethod || r.URL.Path != "/q/"+string(req.queue) || r.URL.RawQuery != "" || r.URL.RawPath != "":
			t.Fatalf("took %s /q/%s; net/http reads %s %s ?%s", wantMethod, req.queue, r.Method, r.URL.Path, r.URL.RawQuery)
		case !bytes.Equal(body, req.body) || len(b)-len(rest) != req.size:
			t.Fatalf("took body %q (%d bytes in all); net/http reads %q (%d)", req.body, req.size, body, len(b)-len(rest))
		case r.ProtoMinor != 1 || r.Close || len(r.TransferEncoding) > 0:
			t.Fatalf("took a request net/http reads as HTTP/1.%d, close %v, %v", r.ProtoMinor, r.Close, r.TransferEncoding)
		case fromBrowser(r) || r.Header.Get("Cookie") != "" || r.Header.Get("Expect") != "":
			t.Fatalf("took a browser's request: %v", r.Header)
		case req.post && mediaType(r) != "" && (mediaType(r) == "multipart/form-data" || mediaType(r) == "application/x-www-form-urlencoded"):
			t.Fatalf("took a form: %q", r.Header.Get("Content-Type"))
		case req.json != wantsJSON(r):
			t.Fatalf("Accept %q: took json=%v", r.Header.Get("Accept"), req.json)
		case !token && !fp.a.hostAllowed(r.Host): // checkHost's rule: with a token and no AllowHosts, any Host
			t.Fatalf("took Host %q", r.Host)
		}
		if token && !fp.a.authorizationOK(r.Header.Get("Authorization")) && (req.post || !fp.a.publicName(string(req.queue))) {
			t.Fatalf("took a request without the token: %v", r.Header)
		}
		if id := r.Header.Get("X-Request-Id"); string(req.requestID) != id {
			t.Fatalf("X-Request-Id %q, net/http reads %q", req.requestID, id)
		}
	})
}
