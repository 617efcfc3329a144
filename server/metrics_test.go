package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// metrics scrapes /metrics.
func (s *testServer) metrics() string {
	s.t.Helper()
	return string(s.get("/metrics").want(s.t, http.StatusOK).Body)
}

// metric reads one sample, name{labels}, from a scrape; a missing one
// fails the test.
func metric(t *testing.T, scrape, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(scrape)
	if m == nil {
		t.Fatalf("/metrics has no %s", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitMetric polls /metrics until series satisfies ok.
func (s *testServer) waitMetric(series string, ok func(float64) bool) float64 {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := metric(s.t, s.metrics(), series)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s is %g after 30 s", series, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawWorker is a worker written against the protocol by hand, over a real
// WebSocket: it takes tasks and answers as the test says.
type rawWorker struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialRawWorker(t *testing.T, srv *testServer) *rawWorker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(srv.URL(), "http", "ws", 1)+"/api/v1/ws/worker", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	w := &rawWorker{t: t, conn: c}
	t.Cleanup(func() { c.CloseNow() })
	w.send(&wp.Hello{Protocol: wp.ProtocolVersion, Kind: wp.KindNative, Slots: 1, UserAgent: "raw test worker"})
	if _, ok := w.recv().(*wp.Welcome); !ok {
		t.Fatal("no WELCOME")
	}
	return w
}

func (w *rawWorker) send(f wp.Frame) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := w.conn.Write(ctx, websocket.MessageBinary, wp.Encode(f)); err != nil {
		w.t.Fatal(err)
	}
}

func (w *rawWorker) recv() wp.Frame {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, b, err := w.conn.Read(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	f, err := wp.Decode(b)
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

// task waits for the next task, skipping other frames.
func (w *rawWorker) task() wp.Task {
	w.t.Helper()
	for {
		if ts, ok := w.recv().(*wp.Tasks); ok && len(ts.Tasks) > 0 {
			return ts.Tasks[0]
		}
	}
}

// /metrics counts tasks by phase and outcome (done, failed, timed out,
// returned), their times, the verification spent and found, jobs by state
// and workers by kind; a running task shows on the worker list under the
// id its worker knows it by, with the progress the worker reported.
func TestEngineMetrics(t *testing.T) {
	srv := startServer(t, server.Config{})
	eng := srv.Engine()
	submit := func(spec engine.Spec, text string) engine.Status {
		t.Helper()
		in, err := eng.NewInput()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.AddFile("input.txt", strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
		st, err := eng.Submit(context.Background(), spec, in)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// One task with a task_timeout of 1 s, for a worker that goes silent.
	st := submit(engine.Spec{Module: "wordcount", Reducers: 1, TaskTimeout: 1, MaxAttempts: 10}, "a b\n")

	// A worker that takes a task, says it is 37 % done, and goes silent:
	// the server times it out after the job's task_timeout (1 s).
	raw := dialRawWorker(t, srv)
	first := raw.task()
	raw.send(&wp.Heartbeat{Progress: []wp.Progress{{TaskID: first.ID, Percent: 37}}})
	eventually(t, "the worker list shows the task with its progress", func() bool {
		for _, w := range eng.Workers() {
			for _, r := range w.Running {
				if r.Copy == first.ID && r.Percent == 37 && r.Job == st.ID && r.Phase == engine.PhaseMap && r.Task > 0 && !r.Sent.IsZero() {
					return true
				}
			}
		}
		return false
	})
	scrape := srv.metrics()
	if got := metric(t, scrape, `tabreduce_workers{kind="native"}`); got != 1 {
		t.Errorf("tabreduce_workers{native} = %g, want 1", got)
	}
	if got := metric(t, scrape, `tabreduce_job_tasks{phase="map",state="running"}`); got < 1 {
		t.Errorf("tabreduce_job_tasks{map,running} = %g, want the raw worker's task", got)
	}
	srv.waitMetric(`tabreduce_tasks_total{outcome="timed_out",phase="map"}`, func(v float64) bool { return v >= 1 })
	// It gets a task again, and leaves with it: the task goes back. (The
	// server ran the timed-out map task itself before counting the
	// untrusted worker's timeout against it, so this one is the reduce.)
	next := raw.task()
	phase := "map"
	if next.Phase == wp.PhaseReduce {
		phase = "reduce"
	}
	raw.conn.Close(websocket.StatusNormalClosure, "bye")
	srv.waitMetric(`tabreduce_tasks_total{outcome="returned",phase="`+phase+`"}`, func(v float64) bool { return v >= 1 })

	// A job whose every result is replicated, and one worker that corrupts
	// every result, given tasks before two honest ones arrive: the cheater
	// is caught and refused.
	text := corpus(40_000, 3)
	checked := submit(engine.Spec{Module: "wordcount", ChunkSize: 4 << 10, Reducers: 2, Verify: engine.VerifyReplicate}, text)
	runNamedWorkers(t, srv.Server, "cheat", []float64{1})
	eventually(t, "the cheater holds a task", func() bool {
		for _, w := range eng.Workers() {
			if w.Name == "cheat0" && len(w.Running) > 0 {
				return true
			}
		}
		return false
	})
	runNamedWorkers(t, srv.Server, "honest", []float64{0, 0})
	if st := waitJob(t, eng, st.ID); st.State != engine.StateDone {
		t.Fatalf("job %s: %s %q", st.ID, st.State, st.Error)
	}
	done := waitJob(t, eng, checked.ID)
	if done.State != engine.StateDone {
		t.Fatalf("job %s: %s %q", done.ID, done.State, done.Error)
	}
	failing := runJob(t, eng, engine.Spec{Module: "grep", MaxAttempts: 1, Reducers: 1}, "x\n") // grep wants a pattern
	if failing.State != engine.StateFailed {
		t.Fatalf("grep without a pattern: %s", failing.State)
	}

	scrape = srv.metrics()
	mapTasks, redTasks := float64(done.Phases[engine.PhaseMap].Total), float64(done.Phases[engine.PhaseReduce].Total)
	for _, c := range []struct {
		series string
		ok     func(float64) bool
		want   string
	}{
		{`tabreduce_tasks_total{outcome="done",phase="map"}`, func(v float64) bool { return v >= mapTasks }, fmt.Sprintf(">= %g", mapTasks)},
		{`tabreduce_tasks_total{outcome="done",phase="reduce"}`, func(v float64) bool { return v >= redTasks }, fmt.Sprintf(">= %g", redTasks)},
		{`tabreduce_tasks_total{outcome="failed",phase="map"}`, func(v float64) bool { return v >= 1 }, ">= 1"},
		{`tabreduce_verification_total{kind="replica"}`, func(v float64) bool { return v >= 1 }, ">= 1"},
		{`tabreduce_verification_total{kind="disagreement"}`, func(v float64) bool { return v >= 1 }, ">= 1"},
		{`tabreduce_verification_total{kind="ban"}`, func(v float64) bool { return v == 1 }, "1"},
		{`tabreduce_workers_flagged`, func(v float64) bool { return v == 1 }, "1"},
		{`tabreduce_workers{kind="native"}`, func(v float64) bool { return v == 2 }, "the two honest workers"},
		{`tabreduce_worker_slots{kind="native"}`, func(v float64) bool { return v == 2 }, "2"},
		{`tabreduce_jobs{state="done"}`, func(v float64) bool { return v == 2 }, "2"},
		{`tabreduce_jobs{state="failed"}`, func(v float64) bool { return v == 1 }, "1"},
		{`tabreduce_task_input_bytes_total`, func(v float64) bool { return v >= float64(len(text)) }, fmt.Sprintf(">= %d", len(text))},
	} {
		if v := metric(t, scrape, c.series); !c.ok(v) {
			t.Errorf("%s = %g, want %s", c.series, v, c.want)
		}
	}
	// Every result was checked: by a replica, or by the server itself when
	// no other worker could run one.
	if checks := metric(t, scrape, `tabreduce_verification_total{kind="replica"}`) +
		metric(t, scrape, `tabreduce_verification_total{kind="spot_check"}`); checks < mapTasks+redTasks {
		t.Errorf("%g replicas and spot checks, want one for each of the %g tasks at least", checks, mapTasks+redTasks)
	}
	// Every committed task is in the time histograms, and no committed
	// task took longer by the server's clock than by the worker's.
	for _, p := range []string{"map", "reduce"} {
		n := metric(t, scrape, `tabreduce_tasks_total{outcome="done",phase="`+p+`"}`)
		for _, h := range []string{"tabreduce_task_duration_seconds", "tabreduce_task_turnaround_seconds"} {
			if got := metric(t, scrape, h+`_count{phase="`+p+`"}`); got != n {
				t.Errorf("%s_count{%s} = %g, want the %g tasks done", h, p, got, n)
			}
		}
		compute := metric(t, scrape, `tabreduce_task_duration_seconds_sum{phase="`+p+`"}`)
		turnaround := metric(t, scrape, `tabreduce_task_turnaround_seconds_sum{phase="`+p+`"}`)
		if compute <= 0 || turnaround < compute {
			t.Errorf("%s: compute %g s, turnaround %g s: want 0 < compute <= turnaround", p, compute, turnaround)
		}
	}
}

// The example Grafana dashboard charts only metrics the server exports.
func TestGrafanaDashboardUsesOurMetrics(t *testing.T) {
	srv := startServer(t, server.Config{})
	srv.pushN("q", 1) // queue metrics exist once a queue does
	scrape := srv.metrics()
	b, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if len(dash.Panels) < 10 {
		t.Fatalf("%d panels", len(dash.Panels))
	}
	name := regexp.MustCompile(`tabreduce_[a-z_]+`)
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(n, "")
				seen[base] = true
				if !strings.Contains(scrape, "# TYPE "+base+" ") {
					t.Errorf("panel %q queries %s, which /metrics does not export", p.Title, n)
				}
			}
		}
	}
	for _, want := range []string{"tabreduce_jobs", "tabreduce_tasks_total", "tabreduce_task_duration_seconds", "tabreduce_workers", "tabreduce_verification_total"} {
		if !seen[want] {
			t.Errorf("no panel charts %s", want)
		}
	}
}
