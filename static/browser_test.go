package static_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/servertest"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// The browser tests drive Debian's chromium over the DevTools protocol
// (chromedp): --dump-dom does not wait for Web Worker computation.

// chromiumFlags are the flags every test browser starts with, besides a
// fresh user-data-dir.
var chromiumFlags = []string{
	"headless", "no-sandbox", "disable-gpu", "disable-background-networking",
	"disable-component-update", "disable-sync", "no-first-run",
	"disable-dev-shm-usage", // /dev/shm is small in containers
}

// chromium returns the browser's path. Without one the test is skipped,
// except in CI (CI=true), where `make test` installs it and its absence is
// a failure.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI is set: `make test` installs it (make chromium)")
	}
	t.Skip("chromium is not installed: run `make chromium` (apt-get install chromium) to run the browser tests")
	return ""
}

// browser starts a headless Chromium for the test and returns its context;
// each tab is a chromedp.NewContext of it.
func browser(t testing.TB) context.Context {
	t.Helper()
	return browserWith(t, nil)
}

// browserWith starts a headless Chromium with flags besides chromiumFlags.
func browserWith(t testing.TB, flags map[string]any) context.Context {
	t.Helper()
	bctx, stop := startBrowser(t, flags)
	t.Cleanup(stop)
	return bctx
}

// startBrowser is browserWith with the stopping left to the caller: stop
// closes the browser and waits for it to exit.
func startBrowser(t testing.TB, flags map[string]any) (_ context.Context, stop func()) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium(t)), chromedp.UserDataDir(t.TempDir())}
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	for k, v := range flags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	return bctx, func() { bcancel(); acancel() }
}

// tab opens url in a new tab; closing it is the returned cancel.
func tab(t testing.TB, bctx context.Context, url string) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return ctx, cancel
}

// startServer starts a server with no in-process worker: only tabs compute.
func startServer(t testing.TB) *server.Server {
	t.Helper()
	return startServerConfig(t, server.Config{LocalWorkers: 0, WasmCache: wasmtest.CacheDir()})
}

// startServerConfig starts a server with cfg.
func startServerConfig(t testing.TB, cfg server.Config) *server.Server {
	t.Helper()
	return servertest.Start(t, cfg)
}

// uploadModule builds a Go job package for wasip1 and registers it.
func uploadModule(t testing.TB, srv *server.Server, pkg string) string {
	t.Helper()
	wasm := wasmtest.Module(t, pkg)
	resp, err := http.Post(srv.URL()+"/api/v1/modules", "application/wasm", bytes.NewReader(wasm))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ SHA256 string }
	body := decodeJSON(t, resp, http.StatusCreated, &ref)
	if len(ref.SHA256) != 64 {
		t.Fatalf("upload %s: %s", pkg, body)
	}
	return ref.SHA256
}

func decodeJSON(t testing.TB, resp *http.Response, status int, v any) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: want %d, got %d: %s", resp.Request.Method, resp.Request.URL, status, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return b
}

// jobStatus is what the tests read of GET /api/v1/jobs/{id}.
type jobStatus struct {
	ID       string           `json:"id"`
	State    string           `json:"state"`
	Error    string           `json:"error"`
	BytesIn  int64            `json:"bytes_in"`
	Counters map[string]int64 `json:"counters"`
	Started  *time.Time       `json:"started"`
	MapDone  *time.Time       `json:"map_done"`
	Finished *time.Time       `json:"finished"`
	Phases   map[string]struct {
		Total, Done, Running, Failed int
	} `json:"phases"`
}

func getJob(t testing.TB, srv *server.Server, id string) jobStatus {
	t.Helper()
	resp, err := http.Get(srv.URL() + "/api/v1/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	var st jobStatus
	decodeJSON(t, resp, http.StatusOK, &st)
	return st
}

// submitJSON submits a job with its input inline.
func submitJSON(t testing.TB, srv *server.Server, spec map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(spec)
	resp, err := http.Post(srv.URL()+"/api/v1/jobs", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var st jobStatus
	decodeJSON(t, resp, http.StatusCreated, &st)
	return st.ID
}

// waitUntil polls cond every 50 ms until it holds, failing after limit.
func waitUntil(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitJob waits until the job's state is final and returns its status.
func waitJob(t testing.TB, srv *server.Server, id string, limit time.Duration) jobStatus {
	t.Helper()
	var st jobStatus
	waitUntil(t, limit, "job "+id+" ends", func() bool {
		st = getJob(t, srv, id)
		return st.State == "done" || st.State == "failed" || st.State == "cancelled"
	})
	return st
}

// browserWorkers counts the connected browser workers.
func browserWorkers(srv *server.Server) int { return workersOfKind(srv, "browser") }

// workersOfKind counts the connected workers of a kind: browser, native or
// local.
func workersOfKind(srv *server.Server, kind string) int {
	n := 0
	for _, w := range srv.Engine().Workers() {
		if w.Kind == kind {
			n++
		}
	}
	return n
}

// evalJS evaluates expr in the tab and returns its value.
func evalJS[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshot writes a full-page PNG of the tab to the test's artifact
// directory (go test -artifacts keeps it) and returns its path.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

func fetchOutput(t testing.TB, srv *server.Server, id string) []byte {
	t.Helper()
	resp, err := http.Get(srv.URL() + "/api/v1/jobs/" + id + "/output?format=tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("output of %s: %d %v %.200s", id, resp.StatusCode, err, b)
	}
	return b
}

// firstDiff describes where two outputs part.
func firstDiff(got, want []byte) string {
	n := 0
	for n < len(got) && n < len(want) && got[n] == want[n] {
		n++
	}
	lo := max(0, n-60)
	return fmt.Sprintf("%d bytes vs %d; first difference at byte %d:\n got …%q\nwant …%q",
		len(got), len(want), n, got[lo:min(len(got), n+60)], want[lo:min(len(want), n+60)])
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
