// Package static holds the web pages and their assets — the landing page,
// the volunteer worker page, the dashboard, their scripts, styles and the
// vendored uPlot — embedded in the binary so that `tabreduce serve` alone
// serves everything, with no external network.
//
// Assets are served under /static/. A page's references to them carry the
// asset's content hash (/static/js/x.js?v=1a2b3c4d5e6f), and a request whose
// v matches is cached forever; any other request for an asset revalidates
// by ETag. Modules that import each other by relative URL take the second
// path: cheap 304s. A page may also have a classic script inlined, for
// what must start before any fetch: <script src="/static/js/x.js" inline>
// becomes the script's text, with the modules it imports bundled in
// (bundle.go; the bundle is a classic script). The scripts Web Workers start from are served
// with their imports bundled in (bundle.go).
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

//go:embed *.html css js vendor
var files embed.FS

// FS returns the embedded pages and assets.
func FS() fs.FS { return files }

// Landing returns the landing page, served at GET /static/index.html (where
// GET / redirects, as RestMQ's does).
func Landing() []byte { return mustPage("index.html") }

// Worker returns the volunteer page served at GET /worker.
func Worker() []byte { return mustPage("worker.html") }

// Dashboard returns the dashboard served at GET /dashboard.
func Dashboard() []byte { return mustPage("dashboard.html") }

func mustPage(name string) []byte {
	b, err := Page(name)
	if err != nil {
		panic("static: " + name + " is not embedded: " + err.Error())
	}
	return b
}

var (
	hashesOnce sync.Once
	hashes     map[string]string // asset path → first 12 hex digits of its sha256
	pagesMu    sync.Mutex
	pages      = map[string][]byte{}
	inlined    = map[string][]string{} // page → CSP sources of its inlined scripts
)

func assetHashes() map[string]string {
	hashesOnce.Do(func() {
		hashes = map[string]string{}
		_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := files.ReadFile(p)
			if err != nil {
				return err
			}
			if bundled, ok := workerBundles()[p]; ok {
				b = bundled
			}
			sum := sha256.Sum256(b)
			hashes[p] = hex.EncodeToString(sum[:6])
			return nil
		})
	})
	return hashes
}

// assetRef matches a page's src= or href= reference to an asset.
var assetRef = regexp.MustCompile(`((?:src|href)=")/static/([^"?]+)"`)

// inlineScript matches a classic script a page wants inlined, for what
// must run before any fetch: <script src="/static/js/x.js" inline></script>.
// Its static imports are bundled in with it.
var inlineScript = regexp.MustCompile(`<script src="/static/([^"?]+\.js)" inline></script>`)

// inline replaces each inlined script reference of a page with the
// script's text, and returns the Content-Security-Policy source of each
// script it inlined ('sha256-…' of the script element's text), which the
// page's policy must list for the browser to run it.
func inline(page []byte) ([]byte, []string, error) {
	var err error
	var hashes []string
	out := inlineScript.ReplaceAllFunc(page, func(m []byte) []byte {
		name := string(inlineScript.FindSubmatch(m)[1])
		js, rerr := bundle(files, name) // with what it imports, if anything
		if rerr == nil && bytes.Contains(bytes.ToLower(js), []byte("</script")) {
			rerr = fmt.Errorf("%s holds </script and cannot be inlined", name)
		}
		if rerr != nil {
			err = rerr
			return m
		}
		text := append([]byte("\n"), js...)
		sum := sha256.Sum256(text)
		hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		return append(append([]byte("<script>"), text...), "</script>"...)
	})
	return out, hashes, err
}

// InlineScripts returns the Content-Security-Policy sources of the scripts
// inlined in an embedded page (see Page), none for most pages.
func InlineScripts(name string) ([]string, error) {
	if _, err := Page(name); err != nil {
		return nil, err
	}
	pagesMu.Lock()
	defer pagesMu.Unlock()
	return inlined[name], nil
}

// Page returns an embedded HTML page with its asset references versioned by
// content hash.
func Page(name string) ([]byte, error) {
	pagesMu.Lock()
	defer pagesMu.Unlock()
	if b, ok := pages[name]; ok {
		return b, nil
	}
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var scripts []string
	if b, scripts, err = inline(b); err != nil {
		return nil, err
	}
	inlined[name] = scripts
	h := assetHashes()
	b = assetRef.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := assetRef.FindSubmatch(m)
		v, ok := h[string(sub[2])]
		if !ok {
			return m
		}
		return []byte(string(sub[1]) + "/static/" + string(sub[2]) + "?v=" + v + `"`)
	})
	pages[name] = b
	return b, nil
}

// Handler serves the assets; mount it with the /static/ prefix stripped.
// Pages (*.html) are not served here: the routes /static/index.html,
// /static/help.html, /worker and /dashboard serve them through Page.
func Handler() http.Handler {
	h := assetHashes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		v, ok := h[name]
		if !ok || strings.HasSuffix(name, ".html") {
			http.NotFound(w, r)
			return
		}
		var content io.ReadSeeker
		if b, ok := workerBundles()[name]; ok {
			content = bytes.NewReader(b)
		} else {
			f, err := files.Open(name)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			defer f.Close()
			content = f.(io.ReadSeeker)
		}
		hdr := w.Header()
		if r.URL.Query().Get("v") == v {
			hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			hdr.Set("Cache-Control", "no-cache")
		}
		hdr.Set("ETag", `"`+v+`"`)
		hdr.Set("X-Content-Type-Options", "nosniff")
		if strings.HasSuffix(name, ".js") {
			hdr.Set("Content-Type", "text/javascript; charset=utf-8")
		}
		http.ServeContent(w, r, name, time.Time{}, content)
	})
}

var (
	bundlesOnce sync.Once
	bundles     map[string][]byte // worker script → its bundle
)

// workerBundles returns the bundles of workerScripts. A script that does
// not bundle is served as it is (its imports then load one round at a
// time), and TestWorkerScriptsBundle fails.
func workerBundles() map[string][]byte {
	bundlesOnce.Do(func() {
		bundles = map[string][]byte{}
		for _, name := range workerScripts {
			if b, err := bundle(files, name); err == nil {
				bundles[name] = b
			}
		}
	})
	return bundles
}
