package static_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/wasm/modenc"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// maxNoopWireBytes is the target for the noop module's bytes on the wire
// to a fresh tab (it was 2.71 MB, uncompressed and with fmt linked).
const maxNoopWireBytes = 700_000

// moduleFetch is what the tab's connection worker recorded of a module it
// fetched (static/js/modules.js).
type moduleFetch struct {
	Module          string  `json:"module"`
	TransferSize    float64 `json:"transferSize"`
	EncodedBodySize float64 `json:"encodedBodySize"`
	DecodedBodySize float64 `json:"decodedBodySize"`
	FetchMs         float64 `json:"fetchMs"`
	ReadyMs         float64 `json:"readyMs"`
	// ByPage: the page compiled it from the preload the server named,
	// while the workers' scripts loaded (static/js/pool.js).
	ByPage bool `json:"byPage"`
}

// noopModule returns the noop module the server offers: the built-in one
// when this binary has it (compressed by the build), else the job built
// here and uploaded (compressed at upload).
func noopModule(t testing.TB, srv *server.Server) (sha string, size int) {
	t.Helper()
	if wasm, err := jobs.Builtin("noop"); err == nil {
		sum := sha256.Sum256(wasm)
		return hex.EncodeToString(sum[:]), len(wasm)
	} else if !errors.Is(err, jobs.ErrNotBuilt) {
		t.Fatal(err)
	}
	return uploadModule(t, srv, "github.com/tabreduce/tabreduce/jobs/noop"), len(wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/noop"))
}

// firstResult opens /worker in a fresh Chromium profile (an empty HTTP and
// module cache) with a one-task job of module sha waiting, and returns the
// time from the page's navigation to the tab sending its first result, and
// what the module fetch cost.
func firstResult(t testing.TB, srv *server.Server, sha string) (time.Duration, moduleFetch) {
	t.Helper()
	id := submitJSON(t, srv, map[string]any{"module": sha, "input": "x\n", "reducers": 1})
	bctx := browser(t)
	worker, closeTab := tab(t, bctx, srv.URL()+"/worker?slots=1")
	defer closeTab()
	if st := waitJob(t, srv, id, time.Minute); st.State != "done" {
		t.Fatalf("job %s: %s %s", id, st.State, st.Error)
	}
	waitUntil(t, 5*time.Second, "the tab reports its first result", func() bool {
		return evalJS[bool](t, worker, `!!(window.tabreduce.last && window.tabreduce.last.marks[0] && window.tabreduce.last.marks[0].result)`)
	})
	fetches := evalJS[[]moduleFetch](t, worker, `window.tabreduce.last.modules`)
	if len(fetches) == 0 {
		t.Fatal("the tab ran a task but reports no module fetch")
	}
	result := evalJS[float64](t, worker, `window.tabreduce.last.marks[0].result`)
	origin := evalJS[float64](t, worker, `performance.timeOrigin`)
	return time.Duration((result - origin) * float64(time.Millisecond)), fetches[0]
}

// TestFreshTabModuleBytes: the noop module reaches a fresh tab compressed,
// in at most maxNoopWireBytes, and decodes to the module's bytes.
func TestFreshTabModuleBytes(t *testing.T) {
	srv := startServer(t)
	sha, size := noopModule(t, srv)
	_, f := firstResult(t, srv, sha)
	t.Logf("noop module: %d bytes on the wire (%d encoded body) for %d bytes of wasm", int(f.TransferSize), int(f.EncodedBodySize), int(f.DecodedBodySize))
	switch {
	case f.Module != sha:
		t.Fatalf("the tab fetched module %s, want %s", f.Module, sha)
	case int(f.DecodedBodySize) != size:
		t.Fatalf("decoded body %d bytes, the module is %d", int(f.DecodedBodySize), size)
	case f.TransferSize <= 0 || f.EncodedBodySize <= 0:
		t.Fatalf("no Resource Timing figures for the module fetch: %+v", f)
	case f.TransferSize > maxNoopWireBytes:
		t.Fatalf("%d bytes on the wire, the target is %d", int(f.TransferSize), maxNoopWireBytes)
	case !f.ByPage:
		t.Fatalf("the connection worker fetched the module after its task came: the page did not compile the module its preload named")
	}
}

// TestWorkerPageNamesWaitingModules: /worker preloads the module of the
// oldest waiting job, and nothing when no job waits; the pool's script is
// inlined, not fetched.
func TestWorkerPageNamesWaitingModules(t *testing.T) {
	srv := startServer(t)
	get := func() string {
		resp, err := http.Get(srv.URL() + "/worker")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /worker: %d %v", resp.StatusCode, err)
		}
		return string(b)
	}
	if page := get(); strings.Contains(page, `<link rel="preload"`) || !strings.Contains(page, "pool.start()") || strings.Contains(page, `src="/static/js/pool.js`) {
		t.Fatalf("/worker with no job: want no preload and pool.js inlined; got:\n%.600s", page)
	}
	sha, _ := noopModule(t, srv)
	submitJSON(t, srv, map[string]any{"module": sha, "input": "x\n", "reducers": 1})
	want := `<link rel="preload" href="/modules/` + sha + `.wasm" as="fetch" crossorigin data-module="` + sha + `">`
	if page := get(); !strings.Contains(page, want) {
		t.Fatalf("/worker with a job waiting: want %s; got:\n%.600s", want, page)
	}
}

// BenchmarkBrowserFirstResult: a fresh Chromium profile opens /worker with
// a one-task noop job waiting; the time from navigation to the tab's first
// result, and the module's bytes on the wire. "noop" is the module as
// served now (the SDK without fmt, compressed); "before" emulates modules
// as they were: the job with fmt linked in, served uncompressed (its
// compressed files removed from the server's module directory).
func BenchmarkBrowserFirstResult(b *testing.B) {
	dir := b.TempDir()
	srv := startServerConfig(b, server.Config{LocalWorkers: 0, WasmCache: wasmtest.CacheDir(), DataDir: dir})
	noop, _ := noopModule(b, srv)
	fat := uploadModule(b, srv, "github.com/tabreduce/tabreduce/static/testdata/fatnoop")
	for _, enc := range modenc.Encodings {
		if err := os.Remove(filepath.Join(dir, "modules", fat+".wasm"+modenc.Suffix(enc))); err != nil {
			b.Fatal(err)
		}
	}
	cases := []struct{ name, sha string }{{"before", fat}, {"noop", noop}}
	// Alternate the two in one run, so that the machine's load falls on
	// both alike.
	var total [2]time.Duration
	var fetch [2]moduleFetch
	for b.Loop() {
		for i, c := range cases {
			d, f := firstResult(b, srv, c.sha)
			total[i] += d
			fetch[i] = f
		}
	}
	n := float64(b.N)
	for i, c := range cases {
		b.ReportMetric(total[i].Seconds()*1000/n, c.name+"-first-result-ms")
		b.ReportMetric(fetch[i].TransferSize/1000, c.name+"-wire-KB")
		b.ReportMetric(fetch[i].ReadyMs, c.name+"-module-ready-ms")
	}
	b.ReportMetric(total[1].Seconds()/total[0].Seconds(), "noop/before")
	b.ReportMetric(0, "ns/op")
}
