package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
)

// headPath fills a route pattern's parameters with names that exist.
func headPath(pattern, module string) string {
	r := strings.NewReplacer(":queue", "headq", ":channel", "headch", ":id", "nosuchjob", ":file", module+".wasm")
	p := r.Replace(pattern)
	switch {
	case strings.HasPrefix(p, "/static/"):
		return "/static/css/site.css"
	case strings.HasPrefix(p, "/kv/"):
		return "/kv/headkey"
	}
	return p
}

// Every GET route answers HEAD with the status and headers of its GET and
// no body, and a HEAD never consumes a message.
func TestHeadOnEveryGetRoute(t *testing.T) {
	srv := startServer(t, server.Config{})
	srv.do("POST", "/q/headq", strings.NewReader("value=kept"), "Content-Type", formType).want(t, 200)
	srv.do("PUT", "/kv/headkey", strings.NewReader(`"v"`), "Content-Type", "application/json").want(t, 200)
	wc, err := jobs.Builtin("wordcount")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wc)
	module := hex.EncodeToString(sum[:])

	var paths []string
	for _, r := range srv.Echo().Routes() {
		if r.Method == http.MethodGet {
			paths = append(paths, headPath(r.Path, module))
		}
	}
	paths = append(paths, "/?queue=headq")
	if len(paths) < 20 {
		t.Fatalf("only %d GET routes: %v", len(paths), paths)
	}
	heads := map[string]*http.Response{}
	for _, p := range paths {
		resp := request(t, http.MethodHead, srv.URL()+p)
		if b, _ := io.ReadAll(resp.Body); len(b) > 0 || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode >= 500 {
			t.Errorf("HEAD %s: %d with %d bytes of body; want GET's status and no body", p, resp.StatusCode, len(b))
		}
		resp.Body.Close()
		heads[p] = resp
	}
	if st := srv.get("/stats/headq"); !strings.Contains(string(st.Body), `"length":1,`) {
		t.Fatalf("after a HEAD on every route, headq is %s: want its one message still there", st.Body)
	}
	for _, p := range paths {
		head := heads[p]
		if consuming[p] {
			if head.StatusCode != http.StatusOK {
				t.Errorf("HEAD %s: %d, want 200", p, head.StatusCode)
			}
			continue
		}
		get := request(t, http.MethodGet, srv.URL()+p)
		get.Body.Close()
		if get.StatusCode != head.StatusCode || get.Header.Get("Content-Type") != head.Header.Get("Content-Type") {
			t.Errorf("%s: GET %d %q, HEAD %d %q", p, get.StatusCode, get.Header.Get("Content-Type"), head.StatusCode, head.Header.Get("Content-Type"))
		}
	}
}

// consuming lists the paths whose GET takes a message or streams: their
// HEAD answers 200 at once and takes nothing.
var consuming = map[string]bool{"/q/headq": true, "/c/headq": true, "/?queue=headq": true, "/pub/headch": true}

// A HEAD on a consuming route still needs the read token.
func TestHeadNeedsTheToken(t *testing.T) {
	srv := startServer(t, server.Config{Token: testToken, PublicRead: []string{"pub.*"}})
	for p, want := range map[string]int{"/q/headq": 401, "/c/headq": 401, "/?queue=headq": 401, "/q/pub.x": 200, "/stats": 401, "/dashboard": 200} {
		resp := request(t, http.MethodHead, srv.URL()+p)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("HEAD %s without the token: %d, want %d", p, resp.StatusCode, want)
		}
	}
}

// request sends one request and returns the response once its headers are
// in; a streaming GET (COMET) is cut short by the context.
func request(t *testing.T, method, url string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}
