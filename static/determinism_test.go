package static_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/servertest"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// detChunkSize is the chunk size of the determinism jobs: the server's
// smallest, so that each small input makes several map tasks.
const detChunkSize = 1 << 10

// detJob is one example job with an input and params suited to it.
type detJob struct {
	name     string // the directory under jobs/
	input    []byte
	params   string // JSON, or "" for none
	reducers int
}

// detJobs returns the seven example jobs, each with a small generated input
// of several chunks: non-ASCII text for the tokenizers, many lines for grep,
// float points for kmeans (whose partial sums depend on the chunking).
func detJobs() []detJob {
	var grep, index, primes, pi, points, noop strings.Builder
	for i := range 400 {
		fmt.Fprintf(&grep, "line %d says %s\n", i, []string{"error: disk", "ok", "warning", "ERROR again", "straße Error"}[i%5])
	}
	for i := range 300 {
		if i%7 == 0 { // no tab: the line's offset is its id
			fmt.Fprintf(&index, "Ünïcödé fox%d and the straße\n", i%3)
		} else {
			fmt.Fprintf(&index, "doc%04d\tThe %d quick foxes; the fox%d jumps ΣΊΣΥΦΟΣ\n", i, i%17, i%5)
		}
	}
	for i := range 300 {
		lo := i * 4999
		fmt.Fprintf(&primes, "%d %d\n", lo, lo+1000+i%7)
	}
	for seed := 1; seed <= 400; seed++ {
		fmt.Fprintf(&pi, "%d %d\n", seed, 200+seed*7)
	}
	for i, p := range wasmtest.ClusterPoints(800) {
		if i%50 == 0 {
			fmt.Fprintf(&points, "%d,%d\n", int(p[0]), int(p[1])) // integers parse too
		}
		fmt.Fprintf(&points, "%v,%v\n", p[0], p[1])
	}
	noop.WriteString(strings.Repeat("some input line\n", 300))
	return []detJob{
		{name: "wordcount", input: corpus(12 << 10), reducers: 3},
		{name: "grep", input: []byte(grep.String()), params: `{"pattern": "(?i)error|ß"}`, reducers: 2},
		{name: "invertedindex", input: []byte(index.String()), reducers: 3},
		{name: "primes", input: []byte(primes.String()), reducers: 2},
		{name: "pi", input: []byte(pi.String()), reducers: 3},
		{name: "kmeans", input: []byte(points.String()), params: `{"centroids": [[1, 1], [9, 9], [-4, 7]]}`, reducers: 2},
		{name: "noop", input: []byte(noop.String()), reducers: 2},
	}
}

// detRun is what one server made of a job.
type detRun struct {
	kind     string // wazero, Chromium or mr.RunLocal
	id       string
	output   []byte
	counters map[string]int64
	mapTasks int
	tasks    map[string]string // task name → result hash
	reruns   []string
}

// TestDeterminism: each example job, with the same module, input and
// params, gives the same bytes on a native worker (wazero) and in Chromium
// tabs: the same result hash for every map and reduce task, the same job
// output and counters. Both must equal mr.RunLocal's output (the job's
// native Go twin), so the agreement is on the right answer. The two
// servers check nothing (verify none) and run no task themselves, so every
// task runs on the worker kind under test.
func TestDeterminism(t *testing.T) {
	jobs := detJobs()
	bctx := browser(t)
	local := runLocalJobs(t, jobs)

	nativeSrv := servertest.Start(t, server.Config{WasmCache: wasmtest.CacheDir()})
	native := detSide{kind: "wazero", srv: nativeSrv, tap: startWorkerTap(t, nativeSrv.URL())}
	servertest.StartWorker(t, native.tap.URL, "")
	browserSrv := startServer(t)
	chromium := detSide{kind: "Chromium", srv: browserSrv, tap: startWorkerTap(t, browserSrv.URL())}
	tab(t, bctx, chromium.tap.URL+"/worker?slots=2&name=det1")
	tab(t, bctx, chromium.tap.URL+"/worker?slots=2&name=det2")
	waitUntil(t, 20*time.Second, "the native worker and two tabs connect", func() bool {
		return workersOfKind(nativeSrv, "native") == 1 && browserWorkers(browserSrv) == 2
	})

	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			sides := []detSide{native, chromium}
			ids := make([]string, len(sides))
			for i, s := range sides {
				ids[i] = s.submit(t, j)
			}
			var runs []detRun
			for i, s := range sides {
				if run, ok := s.finish(t, ids[i]); ok {
					checkDetRun(t, run, local[j.name])
					runs = append(runs, run)
				}
			}
			if len(runs) < len(sides) {
				return // the failed run is reported
			}
			a, b := runs[0], runs[1]
			if d := diffTaskHashes(a, b); d != "" {
				t.Errorf("per-task result hashes, %s (job %s) vs %s (job %s):\n%s", a.kind, a.id, b.kind, b.id, d)
			}
			if got, want := sha256.Sum256(b.output), sha256.Sum256(a.output); got != want {
				t.Errorf("output sha256: %s %x, %s %x; %s vs %s: %s", b.kind, got, a.kind, want, b.kind, a.kind, firstDiff(b.output, a.output))
			}
			t.Logf("%d map tasks, %d distinct task results, output %d bytes, sha256 %x", a.mapTasks, len(a.tasks), len(a.output), sha256.Sum256(a.output))
		})
	}
}

// detSide is a server whose jobs run on one kind of worker only, connected
// through a tap.
type detSide struct {
	kind string
	srv  *server.Server
	tap  *workerTap
}

// checkDetRun checks one side's run against mr.RunLocal's.
func checkDetRun(t *testing.T, run, local detRun) {
	t.Helper()
	if run.mapTasks < 3 {
		t.Errorf("%s: %d map tasks, want at least 3: make the input larger", run.kind, run.mapTasks)
	}
	for _, r := range run.reruns {
		t.Errorf("%s: a task ran twice with different results: %s", run.kind, r)
	}
	if !bytes.Equal(run.output, local.output) {
		t.Errorf("%s output (job %s) vs mr.RunLocal: %s", run.kind, run.id, firstDiff(run.output, local.output))
	}
	if !equalCounters(run.counters, local.counters) {
		t.Errorf("%s counters (job %s): got %v, want %v (mr.RunLocal)", run.kind, run.id, run.counters, local.counters)
	}
}

// submit uploads j's module and submits j, unchecked (verify none).
func (s detSide) submit(t *testing.T, j detJob) string {
	t.Helper()
	sha := uploadModule(t, s.srv, "github.com/tabreduce/tabreduce/jobs/"+j.name)
	spec := map[string]any{
		"module": sha, "input": string(j.input), "chunk_size": detChunkSize,
		"reducers": j.reducers, "verify": "none",
	}
	if j.params != "" {
		spec["params"] = json.RawMessage(j.params)
	}
	return submitJSON(t, s.srv, spec)
}

// finish waits for the job and reads its output, counters and task
// hashes; a job that did not end done, or whose results the tap did not
// all see, is an error and ok is false.
func (s detSide) finish(t *testing.T, id string) (run detRun, ok bool) {
	t.Helper()
	st := waitJob(t, s.srv, id, 30*time.Second)
	if st.State != "done" {
		t.Errorf("%s job %s: want done, got %s (%s)", s.kind, id, st.State, st.Error)
		return run, false
	}
	run = detRun{kind: s.kind, id: id, output: fetchOutput(t, s.srv, id), counters: st.Counters, mapTasks: st.Phases["map"].Total}
	var results int
	run.tasks, results, run.reruns = s.tap.jobHashes(id)
	if n := st.Phases["map"].Total + st.Phases["reduce"].Total; results < n {
		t.Errorf("%s job %s: the tap saw %d results, want one for each of its %d tasks at least", s.kind, id, results, n)
		return run, false
	}
	return run, true
}

// diffTaskHashes lists the tasks whose hashes differ or that ran on one
// side only (a task whose input differs: an earlier task's output did).
func diffTaskHashes(a, b detRun) string {
	var lines []string
	for name, ha := range a.tasks {
		switch hb, ok := b.tasks[name]; {
		case !ok:
			lines = append(lines, fmt.Sprintf("  %s: %s only (%.16s…)", name, a.kind, ha))
		case ha != hb:
			lines = append(lines, fmt.Sprintf("  %s: %s %.16s…, %s %.16s…", name, a.kind, ha, b.kind, hb))
		}
	}
	for name, hb := range b.tasks {
		if _, ok := a.tasks[name]; !ok {
			lines = append(lines, fmt.Sprintf("  %s: %s only (%.16s…)", name, b.kind, hb))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// equalCounters compares counters, a missing counter being zero.
func equalCounters(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// runLocalSource is added, by a build overlay, to each job's package main:
// its init runs the job's Job with mr.RunLocalOptions instead of the empty
// main. A job's package main cannot be imported, and this keeps the native
// twin's run out of the jobs' own code. Arguments: input file, params
// (JSON or ""), chunk size, reducers, TSV output file; counters go to
// stdout as JSON.
const runLocalSource = `package main

import (
	rlcontext "context"
	rljson "encoding/json"
	rlos "os"
	rlstrconv "strconv"

	rldriver "github.com/tabreduce/tabreduce/wasm/driver"
	rlmr "github.com/tabreduce/tabreduce/wasm/mr"
)

func init() {
	a := rlos.Args[1:]
	input, err := rlos.ReadFile(a[0])
	if err != nil {
		panic(err)
	}
	var params []byte
	if a[1] != "" {
		params = []byte(a[1])
	}
	chunk, _ := rlstrconv.Atoi(a[2])
	reducers, _ := rlstrconv.Atoi(a[3])
	out, err := rlmr.RunLocalOptions(rlcontext.Background(), Job, input, params, rldriver.Options{ChunkSize: chunk, Reducers: reducers})
	if err != nil {
		panic(err)
	}
	f, err := rlos.Create(a[4])
	if err != nil {
		panic(err)
	}
	if err := out.WriteTSV(f); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
	counters := map[string]int64{}
	for _, c := range out.Counters {
		counters[c.Name] = c.Value
	}
	rljson.NewEncoder(rlos.Stdout).Encode(counters)
	rlos.Exit(0)
}
`

// runLocalJobs builds each job natively with runLocalSource added and runs
// it over the job's input, with the servers' chunk size and reducers.
func runLocalJobs(t *testing.T, jobs []detJob) map[string]detRun {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "runlocal.go")
	if err := os.WriteFile(src, []byte(runLocalSource), 0o644); err != nil {
		t.Fatal(err)
	}
	overlay := map[string]map[string]string{"Replace": {}}
	var pkgs []string
	for _, j := range jobs {
		jobDir, err := filepath.Abs(filepath.Join("..", "jobs", j.name))
		if err != nil {
			t.Fatal(err)
		}
		overlay["Replace"][filepath.Join(jobDir, "zz_runlocal.go")] = src
		pkgs = append(pkgs, "github.com/tabreduce/tabreduce/jobs/"+j.name)
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	b, _ := json.Marshal(overlay)
	if err := os.WriteFile(overlayFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", append([]string{"build", "-overlay", overlayFile, "-o", bin + string(filepath.Separator)}, pkgs...)...)
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the jobs natively with mr.RunLocal: %v\n%s", err, msg)
	}
	out := map[string]detRun{}
	for _, j := range jobs {
		in, tsv := filepath.Join(dir, j.name+".in"), filepath.Join(dir, j.name+".tsv")
		if err := os.WriteFile(in, j.input, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(bin, j.name), in, j.params, fmt.Sprint(detChunkSize), fmt.Sprint(j.reducers), tsv)
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("mr.RunLocal of %s: %v\n%s", j.name, err, stderrOf(err))
		}
		run := detRun{kind: "mr.RunLocal"}
		if err := json.Unmarshal(stdout, &run.counters); err != nil {
			t.Fatalf("mr.RunLocal of %s: counters %q: %v", j.name, stdout, err)
		}
		if run.output, err = os.ReadFile(tsv); err != nil {
			t.Fatal(err)
		}
		out[j.name] = run
	}
	return out
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
