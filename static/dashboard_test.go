package static_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/servertest"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const primesPkg = "github.com/tabreduce/tabreduce/jobs/primes"

// The dashboard and the volunteer page, mid-job, at 1,280 and 1,920 px:
// nothing sticks out of the window or out of a table, the chart shows the
// last five minutes, every job has its submission time and duration, a
// dead-letter queue is listed and its message can be looked at with its
// attempts and error, and a running task's progress, as its module reports
// it, rises on the volunteer page and in the native worker's heartbeats. Screenshots of each go to the test's artifacts (go test
// -artifacts).
func TestDashboardMidJob(t *testing.T) {
	bctx := browser(t)
	// Heartbeats every second, so that a task of a few seconds is seen
	// mid-way in more than one.
	srv := servertest.Start(t, server.Config{LocalWorkers: 0, MaxAttempts: 2, WasmCache: wasmtest.CacheDir(), HeartbeatInterval: time.Second})
	servertest.StartWorker(t, srv.URL(), "")
	primes := uploadModule(t, srv, primesPkg)
	wordcount := uploadModule(t, srv, wordcountPkg)

	// A job done, a job failed, and a long one: 200 tasks of 20 lines, a
	// few seconds each, whose module (primes, built with the SDK) reports
	// its progress line by line.
	done := submitJSON(t, srv, map[string]any{"module": wordcount, "input": "the cat\nthe dog\n", "reducers": 2})
	grep := uploadModule(t, srv, "github.com/tabreduce/tabreduce/jobs/grep")
	failed := submitJSON(t, srv, map[string]any{"module": grep, "input": "x", "max_attempts": 1}) // grep wants a pattern
	waitJob(t, srv, done, 30*time.Second)
	if st := waitJob(t, srv, failed, 30*time.Second); st.State != "failed" {
		t.Fatalf("grep without a pattern: %s, want failed", st.State)
	}
	var ranges strings.Builder
	for k := range 4000 { // far more than the test waits for: the job stays mid-way
		lo := 100_000_000 + k*30_000
		fmt.Fprintf(&ranges, "%d %d\n", lo, lo+30_000-1) // 20 bytes a line
	}
	long := submitEngine(t, srv, engine.Spec{Module: primes, ChunkSize: 20 * 20, Reducers: 2}, ranges.String())

	// A queue with a dead letter, a paused queue, a busy one.
	push(t, srv, "orders", "order-1", "order-2")
	failTwice(t, srv, "orders", "cannot parse order-1")
	push(t, srv, "paused-queue", "p")
	post(t, srv, "/control/paused-queue", "status=stop")

	worker, _ := tab(t, bctx, srv.URL()+"/worker?slots=1&name=tab1")
	dash, _ := tab(t, bctx, srv.URL()+"/dashboard")
	waitUntil(t, 60*time.Second, "the long job is mapping with tasks on two workers", func() bool {
		st := getJob(t, srv, long)
		return st.State == "mapping" && st.Phases["map"].Done >= 2 && evalJS[int](t, dash, `document.querySelectorAll('#workers td.running .chip').length`) >= 2
	})

	for _, width := range []int64{1280, 1920} {
		if err := chromedp.Do(dash, chromedp.EmulateViewport(width, 1000)); err != nil {
			t.Fatal(err)
		}
		waitUpdated(t, dash)
		checkFits(t, dash, fmt.Sprintf("dashboard at %d px", width))
		screenshot(t, dash, fmt.Sprintf("dashboard-%d.png", width))
	}

	// The chart's x scale spans the last five minutes from its first draw.
	span := evalJS[float64](t, dash, `(() => { const x = window.tabreduce.chart().scales.x; return x.max - x.min })()`)
	if span < 299 || span > 301 {
		t.Errorf("the chart's x scale spans %.1f s, want the last 300 s", span)
	}
	// Every job row has a submission time and a duration.
	for _, id := range []string{done, failed, long} {
		cells := evalJS[[]string](t, dash, fmt.Sprintf(`[...document.querySelector('tr[data-job=%q]').cells].map(c => c.textContent)`, id))
		if len(cells) != 11 || !strings.HasSuffix(cells[3], "ago") && cells[3] != "now" || !strings.HasSuffix(cells[4], " s") {
			t.Errorf("job %s's row %q: want its submission (… ago) and duration (… s)", id, cells)
		}
	}
	// The failed job's error names its task as the pages do (map 1), and
	// the copy that failed by its id on the wire (#N) when a native worker
	// ran it.
	if text := evalJS[string](t, dash, fmt.Sprintf(`document.querySelector('tr[data-job-detail=%q] .job-error').textContent`, failed)); !strings.Contains(text, "task map 1 failed 1 time: ") || strings.Contains(text, "job/") {
		t.Errorf("the failed job's error %q: want it to name \"task map 1 failed 1 time: \" and no queue name", text)
	}
	// The dead-letter queue sits under its queue; peek shows its message.
	// (The viewport is 1,920 px wide here.)
	order := evalJS[[]string](t, dash, `[...document.querySelectorAll('#queues tr[data-queue]')].map(r => r.dataset.queue)`)
	if i := slices.Index(order, "orders"); i < 0 || i+1 >= len(order) || order[i+1] != "orders.dead" {
		t.Errorf("queues listed %q: want orders.dead right after orders", order)
	}
	// Clicked from the page: the table is redrawn with every snapshot, so a
	// node found a moment before may be gone.
	if !evalJS[bool](t, dash, `(() => { const b = document.querySelector('#queues tr[data-queue="orders.dead"] button'); if (b) b.click(); return !!b })()`) {
		t.Fatal("no peek button on orders.dead's row")
	}
	waitUntil(t, 10*time.Second, "the peek shows orders.dead's message", func() bool {
		return evalJS[int](t, dash, `document.querySelectorAll('#peekRows tr').length`) == 1
	})
	row := evalJS[[]string](t, dash, `[...document.querySelector('#peekRows tr').cells].map(c => c.textContent)`)
	if row[0] != "orders.dead:1" || row[1] != "order-1" || row[3] != "2" || row[4] != "cannot parse order-1" {
		t.Errorf("peek row %q: want orders.dead:1, order-1, 2 attempts, its error", row)
	}
	if err := chromedp.Do(dash, chromedp.EmulateViewport(1280, 1000)); err != nil {
		t.Fatal(err)
	}
	waitUpdated(t, dash)
	checkFits(t, dash, "dashboard with the peek open")
	screenshot(t, dash, "dashboard-peek-1280.png")
	// Requeue sends the dead letter back to orders.
	if !evalJS[bool](t, dash, `(() => { const b = [...document.querySelectorAll('#queues tr[data-queue="orders.dead"] button')].find(b => b.textContent === 'requeue'); if (b) b.click(); return !!b })()`) {
		t.Fatal("no requeue button on orders.dead's row")
	}
	waitUntil(t, 10*time.Second, "the dead letter is back in orders", func() bool {
		return evalJS[string](t, dash, `document.querySelector('#queueMsg').textContent`) == "orders.dead: 1 message(s) back in orders"
	})
	if st := queueLength(t, srv, "orders"); st != 2 {
		t.Errorf("orders holds %d messages after the requeue, want 2", st)
	}

	// The native worker's heartbeats carry a running task's progress as its
	// module reports it, and the volunteer page shows it: it passes 0 and
	// rises before the task ends.
	risingProgress(t, "the native worker's heartbeats", func() map[string]int {
		got := map[string]int{}
		for _, w := range getWorkers(t, srv) {
			for _, r := range w.Running {
				if w.Kind == "native" {
					got[fmt.Sprint(r.Copy)] = r.Percent
				}
			}
		}
		return got
	})
	risingProgress(t, "the volunteer page", func() map[string]int {
		return evalJS[map[string]int](t, worker, `Object.fromEntries([...document.querySelectorAll('#running tr')].filter(r => r.querySelector('.progress[data-reported]')).map(r => [r.cells[2].textContent, +r.querySelector('.progress').dataset.reported]))`)
	})
	for _, width := range []int64{1280, 1920} {
		if err := chromedp.Do(worker, chromedp.EmulateViewport(width, 900)); err != nil {
			t.Fatal(err)
		}
		checkFits(t, worker, fmt.Sprintf("volunteer page at %d px", width))
		screenshot(t, worker, fmt.Sprintf("worker-%d.png", width))
	}
	// One task id everywhere: a task the volunteer page runs (#id) is on the
	// dashboard's chip of that tab's worker as #id, and the dashboard shows
	// how far running tasks are.
	waitUntil(t, 30*time.Second, "a task of the tab shows on both pages under one id", func() bool {
		onTab := evalJS[[]string](t, worker, `[...document.querySelectorAll('#running tr')].map(r => r.cells[2] ? r.cells[2].textContent.split(' ')[0] : '')`)
		chips := evalJS[[]string](t, dash, `[...document.querySelectorAll('#workers tr[data-kind="browser"] .chip')].map(c => c.textContent.split(' ')[0])`)
		for _, id := range onTab {
			if id != "" && slices.Contains(chips, id) {
				return true
			}
		}
		return false
	})
	waitUntil(t, 30*time.Second, "the dashboard shows a running task's reported progress", func() bool {
		return evalJS[int](t, dash, `Math.max(0, ...[...document.querySelectorAll('#workers .chip')].map(c => +(c.dataset.reported || 0)))`) > 0
	})
	if st := getJob(t, srv, long); st.State != "mapping" {
		t.Errorf("the long job is %s at the last screenshot, want it still mapping (mid-job)", st.State)
	}
}

// risingProgress waits until one running task has shown two reported
// progress values that rise, both from inside its module's call: not 0 (none
// yet), nor the 50 % and 90 % steps after the call. sample returns the
// percent of each running task by its id.
func risingProgress(t *testing.T, what string, sample func() map[string]int) {
	t.Helper()
	low := map[string]int{}
	waitUntil(t, 90*time.Second, "a task's progress rises in "+what, func() bool {
		for id, p := range sample() {
			if p <= 0 || p >= 90 || p == 50 {
				continue
			}
			if q, ok := low[id]; ok && p > q {
				return true
			}
			if q, ok := low[id]; !ok || p < q {
				low[id] = p
			}
		}
		return false
	})
}

// getWorkers reads GET /api/v1/workers.
func getWorkers(t *testing.T, srv *server.Server) []api.WorkerInfo {
	t.Helper()
	resp, err := http.Get(srv.URL() + "/api/v1/workers")
	if err != nil {
		t.Fatal(err)
	}
	var ws struct {
		Workers []api.WorkerInfo `json:"workers"`
	}
	decodeJSON(t, resp, http.StatusOK, &ws)
	return ws.Workers
}

// checkFits fails the test if an element sticks out of the window on the
// right, or a table is wider than its box (it would scroll).
func checkFits(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	out := evalJS[[]string](t, ctx, `(() => {
		const w = document.documentElement.clientWidth, bad = [];
		for (const e of document.querySelectorAll('body *')) {
			const r = e.getBoundingClientRect();
			if (r.width > 0 && r.right > w + 0.5 && !e.closest('[hidden]')) bad.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') + ' right=' + Math.round(r.right));
		}
		for (const b of document.querySelectorAll('.tablewrap')) {
			if (b.scrollWidth > b.clientWidth + 1) bad.push('a table ' + b.scrollWidth + ' px wide in ' + b.clientWidth + ' px: ' + b.querySelector('th').textContent);
		}
		return bad.slice(0, 10);
	})()`)
	if len(out) > 0 {
		t.Errorf("%s: cut off at the right: %q", what, out)
	}
}

// waitUpdated waits for the dashboard's next snapshot after a resize.
func waitUpdated(t *testing.T, dash context.Context) {
	t.Helper()
	before := evalJS[string](t, dash, `document.body.dataset.updated || ''`)
	waitUntil(t, 5*time.Second, "the dashboard redraws", func() bool {
		return evalJS[string](t, dash, `document.body.dataset.updated || ''`) != before
	})
}

// submitEngine submits a job through the engine itself, which takes any
// chunk size (the HTTP API's floor is 1 KiB): here, a task per line.
func submitEngine(t *testing.T, srv *server.Server, spec engine.Spec, input string) string {
	t.Helper()
	eng := srv.Engine()
	in, err := eng.NewInput()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.AddFile("input", strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	st, err := eng.Submit(context.Background(), spec, in)
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}

func post(t *testing.T, srv *server.Server, path, form string) []byte {
	t.Helper()
	resp, err := http.Post(srv.URL()+path, "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	return decodeJSON(t, resp, resp.StatusCode, &v)
}

func push(t *testing.T, srv *server.Server, queue string, values ...string) {
	t.Helper()
	for _, v := range values {
		resp, err := http.PostForm(srv.URL()+"/q/"+queue, url.Values{"value": {v}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("push to %s: %d", queue, resp.StatusCode)
		}
	}
}

// failTwice leases the head of queue and nacks it with reason, twice: with
// MaxAttempts 2 it lands in the dead-letter queue.
func failTwice(t *testing.T, srv *server.Server, queue, reason string) {
	t.Helper()
	for range 2 {
		var l struct {
			Messages []struct{ Lease string } `json:"messages"`
		}
		resp, err := http.Post(srv.URL()+"/api/v1/queues/"+queue+"/lease", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		decodeJSON(t, resp, http.StatusOK, &l)
		if len(l.Messages) != 1 {
			t.Fatalf("lease from %s: %+v", queue, l)
		}
		body := fmt.Sprintf(`{"lease":%q,"error":%q}`, l.Messages[0].Lease, reason)
		resp, err = http.Post(srv.URL()+"/api/v1/queues/"+queue+"/nack", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("nack: %d", resp.StatusCode)
		}
	}
}

// queueLength is a queue's length, from /stats/{queue}.
func queueLength(t *testing.T, srv *server.Server, queue string) int64 {
	t.Helper()
	resp, err := http.Get(srv.URL() + "/stats/" + queue)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Length int64 `json:"length"`
	}
	decodeJSON(t, resp, http.StatusOK, &st)
	return st.Length
}
