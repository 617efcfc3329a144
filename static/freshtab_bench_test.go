package static_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// beforeEnv names a checkout of an older tree where `make build` has run
// (bin/tabreduce and jobs/noop.wasm): BenchmarkFreshTabBeforeAfter's
// baseline. docs/BENCHMARKS.md has the commands.
const beforeEnv = "TABREDUCE_BEFORE"

// whereTheTimeWent is a fresh tab's first result, in ms from its
// navigation, as its own marks tell it: pool.js's start (pool); the
// connection worker's (conn.js: conn, slot, offered, open, welcome,
// tasks, module, result) and the compute worker's (task.js: computeRun,
// computePort, instanceStart, instanceReady, taskStart, taskEnd); the
// page's compile of the named module done (pageReady) and its fetch
// (fetch: request start / response start / end); and when the Web
// Workers' scripts had arrived (connScript, taskScript: response end).
const whereTheTimeWent = `(() => {
  const o = performance.timeOrigin, last = window.tabreduce.last, r = { pool: Math.round(window.tabreduce.started - o) };
  for (const [k, v] of Object.entries(last.marks[0])) r[k] = Math.round(v - o);
  const m = last.modules.find(m => m.byPage);
  if (m) r.pageReady = Math.round(window.tabreduce.started - o + m.readyMs);
  for (const e of performance.getEntriesByType('resource')) {
    if (e.name.includes('/modules/')) r.fetch = [e.requestStart, e.responseStart, e.responseEnd].map(Math.round).join('/');
    if (e.name.includes('/conn.js')) r.connScript = Math.round(e.responseEnd);
    if (e.name.includes('/task.js')) r.taskScript = Math.round(e.responseEnd);
  }
  return JSON.stringify(r);
})()`

// BenchmarkFreshTabBeforeAfter: the tabreduce binary of this tree against
// an older one's, alternated in one run. Each iteration, for each binary,
// opens /worker?slots=1 of its server (`tabreduce serve`, a process of
// its own, started once) in a fresh Chromium profile, with a
// one-task job of that tree's noop module waiting, and times the page's
// navigation to the server holding the task's result (polled every
// millisecond: the same small delay for both). For this tree's binary it
// also reports the tab's own mark of the result it sent, and the module's
// bytes on the wire.
func BenchmarkFreshTabBeforeAfter(b *testing.B) {
	before := os.Getenv(beforeEnv)
	if before == "" {
		b.Skipf("set %s to a checkout of the older tree where make build has run", beforeEnv)
	}
	now := filepath.Join(b.TempDir(), "tabreduce")
	if msg, err := exec.Command("go", "build", "-o", now, "../cmd/tabreduce").CombinedOutput(); err != nil {
		b.Fatalf("build this tree's tabreduce: %v\n%s", err, msg)
	}
	sides := []struct {
		name, url, sha string
	}{
		{name: "before", url: startServe(b, filepath.Join(before, "bin", "tabreduce"))},
		{name: "now", url: startServe(b, now)},
	}
	for i, noop := range []string{filepath.Join(before, "jobs", "noop.wasm"), "../jobs/noop.wasm"} {
		wasm, err := os.ReadFile(noop)
		if err != nil {
			b.Fatalf("%v (make jobs, or make build in %s)", err, before)
		}
		sides[i].sha = postModule(b, sides[i].url, wasm)
	}
	var total [2]time.Duration
	var each [2][]time.Duration // per iteration, for the medians
	var tabMark time.Duration
	var wire float64
	for round := 0; b.Loop(); round++ {
		// Each binary goes first in every other round: a browser started
		// just after another closed may find the machine busier.
		for _, i := range [2][2]int{{0, 1}, {1, 0}}[round%2] {
			s := sides[i]
			d, worker, stop := freshTabResult(b, s.url, s.sha)
			total[i] += d
			each[i] = append(each[i], d)
			if s.name == "now" { // its marks reach the page four times a second
				waitUntil(b, 20*time.Second, "the tab reports its first result", func() bool {
					return evalJS[bool](b, worker, `!!(window.tabreduce.last && window.tabreduce.last.marks[0] && window.tabreduce.last.marks[0].result)`)
				})
				tabMark += time.Duration(evalJS[float64](b, worker, `window.tabreduce.last.marks[0].result - performance.timeOrigin`) * float64(time.Millisecond))
				wire = evalJS[float64](b, worker, `window.tabreduce.last.modules[0].transferSize`)
				b.Logf("%s", evalJS[string](b, worker, whereTheTimeWent))
			}
			stop()
			waitUntil(b, 20*time.Second, "the tab's worker leaves", func() bool { return countWorkers(s.url) == 0 })
		}
	}
	n := float64(b.N)
	for i, s := range sides {
		b.ReportMetric(total[i].Seconds()*1000/n, s.name+"-first-result-ms")
	}
	for i, s := range sides {
		b.ReportMetric(median(each[i]).Seconds()*1000, s.name+"-median-ms")
	}
	b.ReportMetric(median(each[1]).Seconds()/median(each[0]).Seconds(), "median-now/before")
	b.ReportMetric(tabMark.Seconds()*1000/n, "now-tab-mark-ms")
	b.ReportMetric(wire/1000, "now-wire-KB")
	b.ReportMetric(total[1].Seconds()/total[0].Seconds(), "now/before")
	b.ReportMetric(0, "ns/op")
}

// median is the middle of ds (the mean of the two middle ones for an even
// count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// freshTabResult submits a one-task job of module sha to the server at
// url, opens its /worker?slots=1 in a fresh Chromium profile and returns
// the time from the page's navigation to the server having the result,
// the tab, and what closes its browser.
func freshTabResult(b *testing.B, url, sha string) (time.Duration, context.Context, func()) {
	b.Helper()
	id := postJob(b, url, map[string]any{"module": sha, "input": "x\n", "reducers": 1, "verify": "none"})
	got := make(chan time.Time, 1)
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if mapDone(url, id) > 0 {
				got <- time.Now()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	bctx, stop := startBrowser(b, nil)
	worker, _ := tab(b, bctx, url+"/worker?slots=1")
	var at time.Time
	select {
	case at = <-got:
	case <-ctx.Done():
		stop()
		b.Fatalf("%s: no result for job %s after a minute", url, id)
	}
	origin := evalJS[float64](b, worker, `performance.timeOrigin`)
	return time.Duration(float64(at.UnixMicro())*1e3 - origin*1e6), worker, stop
}

// countWorkers is how many workers the server at url lists, or -1.
func countWorkers(url string) int {
	resp, err := http.Get(url + "/api/v1/workers")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var ws struct{ Workers []json.RawMessage }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ws) != nil {
		return -1
	}
	return len(ws.Workers)
}

// mapDone is how many map tasks of job id the server has results of, or
// -1 if it cannot say.
func mapDone(url, id string) int {
	resp, err := http.Get(url + "/api/v1/jobs/" + id)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var st struct {
		Phases map[string]struct{ Done int } `json:"phases"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return -1
	}
	return st.Phases["map"].Done
}

var listeningOn = regexp.MustCompile(`tabreduce listening on (http://127\.0\.0\.1:\d+)`)

// startServe starts `bin serve` on a free loopback port with a store of its
// own and returns its URL; the benchmark's end stops it.
func startServe(b *testing.B, bin string) string {
	b.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", b.TempDir(), "--fsync", "never",
		"--wasm-cache", wasmtest.CacheDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s serve: %v", bin, err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if m := listeningOn.FindStringSubmatch(lines.Text()); m != nil {
			go io.Copy(io.Discard, out)
			return m[1]
		}
	}
	b.Fatalf("%s serve printed no address; stderr:\n%s", bin, stderr.String())
	return ""
}

// postModule registers a module with the server at url and returns its
// sha256.
func postModule(b *testing.B, url string, wasm []byte) string {
	b.Helper()
	var ref struct{ SHA256 string }
	postAPI(b, url+"/api/v1/modules", "application/wasm", wasm, &ref)
	return ref.SHA256
}

// postJob submits a job as JSON and returns its id.
func postJob(b *testing.B, url string, spec map[string]any) string {
	b.Helper()
	body, _ := json.Marshal(spec)
	var job struct{ ID string }
	postAPI(b, url+"/api/v1/jobs", "application/json", body, &job)
	return job.ID
}

// postAPI posts body to url and decodes the JSON answer into into.
func postAPI(b *testing.B, url, ctype string, body []byte, into any) {
	b.Helper()
	resp, err := http.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		b.Fatalf("POST %s: %s %s", url, resp.Status, msg)
	}
	if err := json.Unmarshal(msg, into); err != nil {
		b.Fatal(fmt.Errorf("POST %s: %w: %s", url, err, msg))
	}
}
