package static_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// otherSite serves page (with TARGET replaced by target) from a server of
// its own on a loopback port of its own: to the browser, another origin.
func otherSite(t testing.TB, page, target string) *httptest.Server {
	t.Helper()
	html := strings.ReplaceAll(page, "TARGET", target)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, html)
	}))
	t.Cleanup(site.Close)
	return site
}

// forgeryPage is what a web page of another site can send the operator's
// server without asking the browser for permission (CORS "simple"
// requests, forms, images), once the operator has it open.
const forgeryPage = `<!doctype html><title>loading</title>
<iframe name="sink"></iframe>
<form id="push" method="post" action="TARGET/q/victim" target="sink"><input name="value" value="forged"></form>
<script>
const T = 'TARGET', results = {};
async function attempt(name, p) {
  try { const r = await p; results[name] = r.type + ' ' + r.status; } catch (e) { results[name] = 'error ' + e.message; }
}
(async () => {
  await attempt('push', fetch(T + '/q/victim', { method: 'POST', mode: 'no-cors', body: new URLSearchParams({ value: 'forged' }) }));
  await attempt('mset', fetch(T + '/kv/mset', { method: 'POST', mode: 'no-cors', body: '{"forged":1}' }));
  await attempt('pause', fetch(T + '/control/victim', { method: 'POST', mode: 'no-cors', body: new URLSearchParams({ status: 'stop' }) }));
  const job = new FormData();
  job.append('module', 'noop');
  job.append('input', new Blob(['x\n']), 'in.txt');
  await attempt('submit', fetch(T + '/api/v1/jobs', { method: 'POST', mode: 'no-cors', body: job }));
  await new Promise(done => { const img = new Image(); img.onload = img.onerror = done; img.src = T + '/q/victim'; });
  await new Promise(done => { document.querySelector('iframe').onload = done; document.getElementById('push').submit(); });
  document.title = 'done';
})();
</script>`

// A page of another site, open in the operator's browser, cannot push,
// write keys, pause, submit jobs or take messages on a server without a
// token (make run's).
func TestCrossSitePageInBrowser(t *testing.T) {
	bctx := browser(t)
	srv := startServer(t)
	push(t, srv, "victim", "keep")
	site := otherSite(t, forgeryPage, srv.URL())
	ctx, _ := tab(t, bctx, site.URL)
	waitUntil(t, 30*time.Second, "the page has sent its requests", func() bool { return evalJS[string](t, ctx, "document.title") == "done" })
	t.Logf("what the page saw: %s", evalJS[string](t, ctx, "JSON.stringify(results)"))

	var st struct {
		Len    int    `json:"len"`
		Status string `json:"status"`
	}
	resp, err := http.Get(srv.URL() + "/stats/victim")
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(t, resp, http.StatusOK, &st)
	if st.Len != 1 || st.Status != "active" {
		t.Errorf("queue victim: %+v, want its one message, active", st)
	}
	if resp, err := http.Get(srv.URL() + "/kv/forged"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /kv/forged: %v %v, want 404", resp.Status, err)
	}
	var jobs struct{ Jobs []any }
	if resp, err := http.Get(srv.URL() + "/api/v1/jobs"); err == nil {
		decodeJSON(t, resp, http.StatusOK, &jobs)
	}
	if len(jobs.Jobs) != 0 {
		t.Errorf("the page submitted %d jobs", len(jobs.Jobs))
	}
	var m struct{ Value string }
	if resp, err := http.Get(srv.URL() + "/q/victim"); err == nil {
		decodeJSON(t, resp, http.StatusOK, &m)
	}
	if m.Value != "keep" {
		t.Errorf("the queue's message is %q, want keep", m.Value)
	}
}

// A name that a page's author controls, resolved to this server (as DNS
// rebinding does once the page is loaded), is refused: the page cannot
// read the dashboard or the queues under its own origin.
func TestReboundNameInBrowser(t *testing.T) {
	bctx := browserWith(t, map[string]any{"host-resolver-rules": "MAP rebind.test 127.0.0.1"})
	srv := startServer(t)
	_, port, _ := net.SplitHostPort(srv.Addr())
	ctx, _ := tab(t, bctx, "http://rebind.test:"+port+"/dashboard")
	body := evalJS[string](t, ctx, "document.body ? document.body.innerText : ''")
	if !strings.Contains(body, `host \"rebind.test:`+port+`\" refused`) {
		t.Errorf("the dashboard under a rebound name: %q, want the 403 that refuses the host", truncate(body, 300))
	}
	if n := evalJS[int](t, ctx, "document.querySelectorAll('script').length"); n != 0 {
		t.Errorf("the page under a rebound name has %d scripts", n)
	}
	// The same server under its own name works.
	ctx, _ = tab(t, bctx, "http://localhost:"+port+"/dashboard")
	waitUpdated(t, ctx)
}

// cspWatch is evaluated in every page before its own scripts: it records
// the page's Content-Security-Policy violations.
const cspWatch = `window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`

// The pages work under their Content-Security-Policy: the dashboard draws,
// the volunteer page runs a job, the landing page fills in its examples,
// and none of them meets a violation.
func TestPagesUnderCSP(t *testing.T) {
	bctx := browser(t)
	srv := startServer(t)
	open := func(path string) context.Context {
		t.Helper()
		ctx, cancel := chromedp.NewContext(bctx)
		t.Cleanup(cancel)
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch})
		if err == nil {
			err = chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL()+path))
		}
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		return ctx
	}
	dash := open("/dashboard")
	worker := open("/worker?slots=1")
	waitUntil(t, 20*time.Second, "a browser worker connects", func() bool { return browserWorkers(srv) == 1 })
	text := "one two two\n"
	id := submitJSON(t, srv, map[string]any{"module": "wordcount", "input": text})
	if st := waitJob(t, srv, id, 30*time.Second); st.State != "done" {
		t.Fatalf("job on the volunteer page: %s %q", st.State, st.Error)
	}
	waitUpdated(t, dash)
	waitUntil(t, 5*time.Second, "the dashboard lists the job", func() bool {
		return evalJS[bool](t, dash, fmt.Sprintf("!!document.querySelector('tr[data-job-detail=%q]')", id))
	})
	landing := open("/static/index.html")
	waitUntil(t, 5*time.Second, "the landing page names the server", func() bool {
		return strings.Contains(evalJS[string](t, landing, "document.querySelector('pre').textContent"), srv.Addr())
	})
	help := open("/static/help.html")
	for name, ctx := range map[string]context.Context{"dashboard": dash, "worker": worker, "landing": landing, "help": help} {
		if v := evalJS[[]string](t, ctx, "window.__csp"); len(v) != 0 {
			t.Errorf("%s: CSP violations %q", name, v)
		}
	}
}

// A site the operator names in --allow-origin may frame the volunteer page,
// so that its visitors lend their tabs; the page runs jobs from there.
func TestVolunteerPageFramedByAllowedSite(t *testing.T) {
	bctx := browser(t)
	var target string
	frame := `<!doctype html><title>friend</title><iframe src="TARGET/worker?slots=1" width="800" height="600"></iframe>`
	site := httptest.NewUnstartedServer(nil)
	site.Start()
	t.Cleanup(site.Close)
	srv := startServerConfig(t, server.Config{LocalWorkers: 0, WasmCache: wasmtest.CacheDir(), AllowOrigins: []string{site.URL}})
	target = srv.URL()
	html := strings.ReplaceAll(frame, "TARGET", target)
	site.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, html)
	})
	tab(t, bctx, site.URL)
	waitUntil(t, 20*time.Second, "the framed volunteer page connects", func() bool { return browserWorkers(srv) == 1 })
	id := submitJSON(t, srv, map[string]any{"module": "wordcount", "input": "a b a\n"})
	if st := waitJob(t, srv, id, 30*time.Second); st.State != "done" {
		t.Fatalf("job on the framed page: %s %q", st.State, st.Error)
	}
}

// usedMiB reads "used N MiB" from a memory error.
var usedMiB = regexp.MustCompile(`used (\d+) MiB`)

// The browser worker's memory cap holds inside a call: a module that takes
// memory until something stops it is stopped at the cap (256 MiB), not
// after the call returns (it never would), and the tab runs on. Both ways
// a tab compiles a module are tried: the page's own compile of a module the
// waiting work needs (named in /worker's preload links), and the
// connection worker's, as it streams in for a task.
func TestBrowserMemoryCapDuringACall(t *testing.T) {
	bctx := browser(t)
	srv := startServer(t)
	bomb := wasmtest.Module(t, "github.com/tabreduce/tabreduce/wasm/runner/testdata/bomb")
	wantCapped := func(id, how string) {
		t.Helper()
		st := waitJob(t, srv, id, 60*time.Second)
		if st.State != "failed" || !strings.Contains(st.Error, "out of memory") {
			t.Fatalf("%s: want failed out of memory, got %s %q", how, st.State, truncate(st.Error, 300))
		}
		m := usedMiB.FindStringSubmatch(st.Error)
		if m == nil {
			t.Fatalf("%s: the error does not say how much memory the module used: %q", how, truncate(st.Error, 300))
		}
		if n, _ := strconv.Atoi(m[1]); n > 256 {
			t.Errorf("%s: the module used %d MiB, past the 256 MiB cap", how, n)
		}
	}
	sha := uploadBytes(t, srv, bomb)
	waiting := submitJSON(t, srv, map[string]any{"module": sha, "input": "x\n", "max_attempts": 1})
	worker, _ := tab(t, bctx, srv.URL()+"/worker?slots=1")
	wantCapped(waiting, "compiled by the page")
	waitUntil(t, 5*time.Second, "the tab says the page compiled the module", func() bool {
		return evalJS[bool](t, worker, fmt.Sprintf(`!!(window.tabreduce.last && window.tabreduce.last.modules.some(m => m.module === %q && m.byPage))`, sha))
	})
	streamed := submitJSON(t, srv, map[string]any{"module": uploadBytes(t, srv, withCustomSection(bomb)), "input": "x\n", "max_attempts": 1})
	wantCapped(streamed, "compiled by the connection worker")
	okJob := submitJSON(t, srv, map[string]any{"module": "wordcount", "input": "a b a\n"})
	if st := waitJob(t, srv, okJob, 30*time.Second); st.State != "done" {
		t.Fatalf("job after the memory failures: %s %q", st.State, st.Error)
	}
}

// withCustomSection returns wasm with a small custom section at its end:
// the same module under another sha256.
func withCustomSection(wasm []byte) []byte {
	return append(append([]byte(nil), wasm...), 0, 3, 1, 'x', 0)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// A module whose memory the tab cannot cap (shared, 64-bit, or more than
// one memory) is refused before it runs: compiled as it is, it could take
// memory past the cap inside a call. One plain memory is given the cap as
// its maximum. The server refuses such modules at upload; this is the
// tab's own guard, tried on the page's copy of modules.js.
func TestBrowserRefusesMemoryItCannotCap(t *testing.T) {
	bctx := browser(t)
	srv := startServer(t)
	page, _ := tab(t, bctx, srv.URL()+"/worker?paused")
	const header = "0x00,0x61,0x73,0x6d,0x01,0x00,0x00,0x00,"
	cases := map[string]string{
		"shared":     header + "5,6,1,3,1,0x80,0x80,0x04",
		"memory64":   header + "5,3,1,4,1",
		"two":        header + "5,5,2,0,1,0,1",
		"unreadable": header + "5,3,1,0,0x80",
		"plain":      header + "5,3,1,0,1",
	}
	for name, bytes := range cases {
		js := fmt.Sprintf(`window.capResult = undefined;
			import('/static/js/modules.js').then(m => {
				try { const b = m.capMemoryBytes(new Uint8Array([%s]), m.MAX_PAGES); window.capResult = 'ok ' + Array.from(b.subarray(8)).join(','); }
				catch (e) { window.capResult = 'refused ' + e.message; }
			}); true`, bytes)
		evalJS[bool](t, page, js)
		var got string
		waitUntil(t, 5*time.Second, "capMemoryBytes answers", func() bool {
			got = evalJS[string](t, page, `window.capResult || ''`)
			return got != ""
		})
		if name == "plain" {
			if got != "ok 5,5,1,1,1,128,32" { // flags 1, min 1, max 4096
				t.Errorf("plain memory: %q, want the cap as its maximum", got)
			}
			continue
		}
		if !strings.HasPrefix(got, "refused ") {
			t.Errorf("%s memory: %q, want it refused", name, got)
		}
	}
}
