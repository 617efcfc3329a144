package httpapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/engine"
)

// The map/reduce engine's figures on /metrics: counters and histograms fed
// by the engine as tasks end and results are checked (EngineMetrics, its
// engine.Observer), and gauges read from it at scrape time
// (NewEngineCollector). docs/grafana-dashboard.json charts them.

// taskBuckets are the task time histograms' bounds, in seconds: from a
// no-op task to a long one.
var taskBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// EngineMetrics counts what the engine tells it: it is the engine's
// Observer.
type EngineMetrics struct {
	tasks      *prometheus.CounterVec
	compute    *prometheus.HistogramVec
	turnaround *prometheus.HistogramVec
	verify     *prometheus.CounterVec
}

var _ engine.Observer = (*EngineMetrics)(nil)

// NewEngineMetrics registers the engine's counters and histograms with
// reg, every label combination at zero, and returns the Observer that
// feeds them.
func NewEngineMetrics(reg prometheus.Registerer) *EngineMetrics {
	m := &EngineMetrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tabreduce_tasks_total",
			Help: "Task copies that left a worker, by phase and outcome: done (result committed), failed (the worker said so, or sent a malformed result), timed_out (past the job's task_timeout), returned (the worker left first).",
		}, []string{"phase", "outcome"}),
		compute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tabreduce_task_duration_seconds",
			Help:    "Compute time of committed tasks as their workers report it, by phase.",
			Buckets: taskBuckets,
		}, []string{"phase"}),
		turnaround: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tabreduce_task_turnaround_seconds",
			Help:    "Time from handing a task out to committing its result, by phase: compute plus transfer and waiting on the worker.",
			Buckets: taskBuckets,
		}, []string{"phase"}),
		verify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tabreduce_verification_total",
			Help: "Verification of untrusted workers' results, by kind: replica (a copy run on a second worker), probe (a known-answer task), spot_check (the server re-ran a task), disagreement (a result that did not match), rerun (a committed result undone), ban (a worker flagged and refused).",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.tasks, m.compute, m.turnaround, m.verify)
	for _, p := range []engine.Phase{engine.PhaseMap, engine.PhaseReduce} {
		for _, o := range []engine.TaskOutcome{engine.OutcomeDone, engine.OutcomeFailed, engine.OutcomeTimedOut, engine.OutcomeReturned} {
			m.tasks.WithLabelValues(string(p), string(o))
		}
		m.compute.WithLabelValues(string(p))
		m.turnaround.WithLabelValues(string(p))
	}
	for _, k := range []engine.VerifyEvent{engine.VerifyReplica, engine.VerifyProbe, engine.VerifySpotCheck,
		engine.VerifyDisagreement, engine.VerifyRerun, engine.VerifyBan, engine.VerifySameNetwork, engine.VerifyAudit,
		engine.VerifyFailureCheck} {
		m.verify.WithLabelValues(string(k))
	}
	return m
}

// TaskEnded counts a task copy's end and, for a committed one, its times.
func (m *EngineMetrics) TaskEnded(phase engine.Phase, outcome engine.TaskOutcome, compute, turnaround time.Duration) {
	m.tasks.WithLabelValues(string(phase), string(outcome)).Inc()
	if outcome == engine.OutcomeDone {
		m.compute.WithLabelValues(string(phase)).Observe(compute.Seconds())
		m.turnaround.WithLabelValues(string(phase)).Observe(turnaround.Seconds())
	}
}

// Verified counts one verification event.
func (m *EngineMetrics) Verified(kind engine.VerifyEvent) {
	m.verify.WithLabelValues(string(kind)).Inc()
}

// engineState is what the gauges read of the engine.
type engineState interface {
	Jobs(ctx context.Context) ([]api.Status, error)
	Workers() []api.WorkerInfo
	Totals() api.Totals
}

// engineCollector reads jobs, tasks and workers at scrape time.
type engineCollector struct {
	e                                      engineState
	jobs, tasks, workers, slots, held, bad *prometheus.Desc
	bytes                                  *prometheus.Desc
}

// NewEngineCollector returns a collector of the engine's gauges: jobs by
// state, tasks waiting and running by phase, connected workers, their
// slots and the task copies they hold by kind, flagged workers, and the
// input bytes of committed tasks.
func NewEngineCollector(e engineState) prometheus.Collector {
	return &engineCollector{e: e,
		jobs:    prometheus.NewDesc("tabreduce_jobs", "Jobs by state.", []string{"state"}, nil),
		tasks:   prometheus.NewDesc("tabreduce_job_tasks", "Tasks of the jobs not yet finished, by phase and state (pending or running).", []string{"phase", "state"}, nil),
		workers: prometheus.NewDesc("tabreduce_workers", "Connected workers by kind (browser, native, local).", []string{"kind"}, nil),
		slots:   prometheus.NewDesc("tabreduce_worker_slots", "Task slots of the connected workers, by kind.", []string{"kind"}, nil),
		held:    prometheus.NewDesc("tabreduce_worker_tasks", "Task copies the connected workers hold (running or queued on them), by kind.", []string{"kind"}, nil),
		bad:     prometheus.NewDesc("tabreduce_workers_flagged", "Workers caught returning wrong results since the server started.", nil, nil),
		bytes:   prometheus.NewDesc("tabreduce_task_input_bytes_total", "Input bytes of the committed tasks.", nil, nil),
	}
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.tasks, c.workers, c.slots, c.held, c.bad, c.bytes} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(c.e.Totals().BytesDone))
	kinds := map[string][3]int{"browser": {}, "native": {}, "local": {}}
	flagged := 0
	for _, w := range c.e.Workers() {
		if w.Flagged {
			flagged++
			continue
		}
		k := kinds[w.Kind]
		k[0]++
		k[1] += w.Slots
		k[2] += len(w.Running)
		kinds[w.Kind] = k
	}
	for kind, k := range kinds {
		gauge(c.workers, float64(k[0]), kind)
		gauge(c.slots, float64(k[1]), kind)
		gauge(c.held, float64(k[2]), kind)
	}
	gauge(c.bad, float64(flagged))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sts, err := c.e.Jobs(ctx)
	if err != nil {
		return
	}
	states := map[api.State]int{}
	for _, s := range []api.State{api.StateQueued, api.StateMapping, api.StateReducing, api.StateDone, api.StateFailed, api.StateCancelled} {
		states[s] = 0
	}
	tasks := map[[2]string]int{}
	for _, st := range sts {
		states[st.State]++
		if st.State.Finished() {
			continue
		}
		for p, pc := range st.Phases {
			tasks[[2]string{string(p), "pending"}] += pc.Pending
			tasks[[2]string{string(p), "running"}] += pc.Running
		}
	}
	for s, n := range states {
		gauge(c.jobs, float64(n), string(s))
	}
	for _, p := range []string{"map", "reduce"} {
		for _, s := range []string{"pending", "running"} {
			gauge(c.tasks, float64(tasks[[2]string{p, s}]), p, s)
		}
	}
}
