package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

// The map/reduce end-to-end tests run `tabreduce serve` and `tabreduce
// worker` subprocesses on loopback, submit built-in jobs on a generated
// corpus with the CLI, and compare `tabreduce output` byte for byte with
// an oracle written plainly here; then the same with workers and the server
// killed mid-job.

// Bounds of the map/reduce end-to-end tests.
const (
	jobWait      = 60 * time.Second // one job, start to end
	corpusSize   = 1_500_000        // bytes of the generated corpus
	grepPattern  = `(?i)error`
	statusPoll   = 2 * time.Millisecond // polling a job to catch it mid-phase
	churnEvery   = time.Second          // a worker killed and restarted this often
	churnKills   = 4                    // kills that must land while a job runs
	churnMaxRuns = 6                    // rounds of the three jobs, at most
)

// TestMapReduceE2E builds the binary once and runs each scenario against
// it, in parallel.
func TestMapReduceE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, name := range []string{"wordcount", "grep", "invertedindex"} {
		if _, err := jobs.Builtin(name); errors.Is(err, jobs.ErrNotBuilt) {
			t.Fatalf("built-in job %s is not embedded: run `make jobs` before `go test` (`make test` does)", name)
		}
	}
	bin := tabreduceBin(t)
	corpus := writeCorpus(t, genCorpus(corpusSize, 1))
	for _, want := range []struct{ job, has string }{{"wordcount", "école\t"}, {"grep", `\r`}, {"grep", `\t`}, {"invertedindex", `id\\`}} {
		if !strings.Contains(corpus.want[want.job], want.has) {
			t.Fatalf("the oracle's %s output has no %q, want the corpus to exercise it", want.job, want.has)
		}
	}
	t.Run("exact output", func(t *testing.T) { t.Parallel(); testExactOutput(t, bin, corpus) })
	t.Run("worker churn", func(t *testing.T) { t.Parallel(); testWorkerChurn(t, bin, corpus) })
	t.Run("server kill -9 mid-map and mid-reduce", func(t *testing.T) { t.Parallel(); testServerKill(t, bin, corpus) })
	t.Run("module traps", func(t *testing.T) { t.Parallel(); testModuleTraps(t, bin) })
	t.Run("malformed submissions", func(t *testing.T) { t.Parallel(); testMalformedSubmissions(t, bin) })
}

// corpusFile is a generated input on disk and the oracle's outputs for it.
type corpusFile struct {
	path   string
	want   map[string]string // job name → expected `tabreduce output` (TSV)
	counts map[string]string // wordcount's pairs
}

func writeCorpus(t *testing.T, text []byte) corpusFile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	s := string(text)
	counts := wordcountOracle(s)
	return corpusFile{path: path, counts: counts, want: map[string]string{
		"wordcount":     oracleTSV(counts),
		"grep":          oracleTSV(grepOracle(s, grepPattern)),
		"invertedindex": oracleTSV(invertedIndexOracle(s)),
	}}
}

// jobParams are the --params each job is submitted with.
var jobParams = map[string]string{"grep": fmt.Sprintf(`{"pattern": %q}`, grepPattern)}

// testExactOutput runs the three jobs on a server with two workers and
// compares their output with the oracle's.
func testExactOutput(t *testing.T, bin string, corpus corpusFile) {
	srv := startBroker(t, bin, t.TempDir(), "always")
	startWorker(t, bin, srv.url, "w1", 2)
	startWorker(t, bin, srv.url, "w2", 2)
	for _, name := range []string{"wordcount", "grep", "invertedindex"} {
		id := submitWait(t, bin, srv.url, name, corpus.path, "3", "64KiB")
		checkOutput(t, name, fetchOutput(t, bin, srv.url, id), corpus.want[name])
	}
}

// testWorkerChurn runs the three jobs, round after round, while one of the
// two workers is killed (SIGKILL) and restarted every churnEvery, until
// churnKills kills have landed while a job ran; every output must still be
// exact.
func testWorkerChurn(t *testing.T, bin string, corpus corpusFile) {
	srv := startBroker(t, bin, t.TempDir(), "always")
	workers := []*proc{startWorker(t, bin, srv.url, "w1", 2), startWorker(t, bin, srv.url, "w2", 2)}
	var running atomic.Bool
	var kills, midJob atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(churnEvery):
			}
			w := i % 2
			workers[w].kill(t)
			kills.Add(1)
			if running.Load() {
				midJob.Add(1)
			}
			name := fmt.Sprintf("w%d-%d", w+1, i)
			p, err := newProc(t, bin, "worker "+name, workerArgs(srv.url, name, 2)...)
			if err != nil {
				t.Error(err)
				return
			}
			workers[w] = p
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for round := 1; round <= churnMaxRuns && midJob.Load() < churnKills; round++ {
		for _, name := range []string{"wordcount", "grep", "invertedindex"} {
			running.Store(true)
			id := submitWait(t, bin, srv.url, name, corpus.path, "5", "1KiB")
			running.Store(false)
			checkOutput(t, fmt.Sprintf("%s (round %d)", name, round), fetchOutput(t, bin, srv.url, id), corpus.want[name])
		}
	}
	if n := midJob.Load(); n < churnKills {
		t.Errorf("%d worker kills landed while a job ran (of %d), want at least %d", n, kills.Load(), churnKills)
	}
	t.Logf("worker churn: %d kills, %d while a job ran", kills.Load(), midJob.Load())
}

// testServerKill runs wordcount with many map tasks and many reducers,
// kills the server with SIGKILL once mid-map and once mid-reduce, restarts
// it each time on the same data directory (with new workers for its new
// port) and checks that the job resumes with its committed tasks and ends
// with the oracle's output: no result lost, none counted twice.
func testServerKill(t *testing.T, bin string, corpus corpusFile) {
	const reducers = 1024 // the most a job may have: a reduce phase long enough to catch
	dir := t.TempDir()
	srv := startBroker(t, bin, dir, "always")
	workers := startWorkers(t, bin, srv.url)
	job, err := apiclient.New(srv.url, "").SubmitJob(t.Context(),
		engine.Spec{Module: "wordcount", Reducers: reducers, ChunkSize: 1 << 10}, apiclient.FileInput(corpus.path))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	mapTotal := job.Phases[engine.PhaseMap].Total
	srv = killMidPhase(t, bin, dir, srv, workers, job.ID, engine.PhaseMap, func(done int) bool {
		return done >= mapTotal/4 && done < mapTotal
	})
	workers = startWorkers(t, bin, srv.url)
	srv = killMidPhase(t, bin, dir, srv, workers, job.ID, engine.PhaseReduce, func(done int) bool {
		return done >= 1 && done < reducers
	})
	startWorkers(t, bin, srv.url)
	final := waitDone(t, srv.url, job.ID)
	checkOutput(t, "wordcount after two kills", fetchOutput(t, bin, srv.url, job.ID), corpus.want["wordcount"])
	checkCounted(t, "after two kills", final, corpus)
}

// checkCounted checks a done wordcount's sums against the oracle: every
// map task counted once, every record once.
func checkCounted(t *testing.T, what string, final apiclient.Job, corpus corpusFile) {
	t.Helper()
	if got, want := final.Counters["words"], wordTotal(corpus.counts); got != want {
		t.Errorf("counter words = %d %s, want %d (each map task counted once)", got, what, want)
	}
	if got, want := final.Records, int64(len(corpus.counts)); got != want {
		t.Errorf("records_out = %d %s, want %d", got, what, want)
	}
}

// killMidPhase polls job id on srv until it is in phase with a done count
// that satisfies mid, kills the server (SIGKILL) and then its workers,
// restarts the server on dir and checks that the job is still in that phase
// with at least the tasks done that were done before the kill. It returns
// the new server, which has no workers yet.
func killMidPhase(t *testing.T, bin, dir string, srv *proc, workers []*proc, id string, phase engine.Phase, mid func(done int) bool) *proc {
	t.Helper()
	state := map[engine.Phase]engine.State{engine.PhaseMap: engine.StateMapping, engine.PhaseReduce: engine.StateReducing}[phase]
	seen := pollUntil(t, apiclient.New(srv.url, ""), id, "mid-"+string(phase), func(j apiclient.Job) bool {
		return j.State == state && mid(j.Phases[phase].Done)
	})
	srv.kill(t)
	killAll(t, workers)
	srv = startBroker(t, bin, dir, "always")
	before, after := seen.Phases[phase], getJob(t, srv.url, id)
	if got := after.Phases[phase]; after.State != state || got.Total != before.Total || got.Done < before.Done {
		t.Fatalf("after kill -9 mid-%s (%d/%d tasks done) and restart: job %s, %s %d/%d done; want %s with at least those done",
			phase, before.Done, before.Total, after.State, phase, got.Done, got.Total, state)
	}
	t.Logf("killed mid-%s at %d/%d tasks done; %d done after the restart", phase, before.Done, before.Total, after.Phases[phase].Done)
	return srv
}

// workers and jobs

// startWorkers starts two workers with two slots each for url.
func startWorkers(t *testing.T, bin, url string) []*proc {
	t.Helper()
	return []*proc{startWorker(t, bin, url, "w1", 2), startWorker(t, bin, url, "w2", 2)}
}

func killAll(t *testing.T, ps []*proc) {
	for _, p := range ps {
		p.kill(t)
	}
}

// submitWait runs `tabreduce submit --wait` for a built-in job and returns
// the job's id once it is done.
func submitWait(t *testing.T, bin, url, job, input, reducers, chunk string) string {
	t.Helper()
	args := []string{"submit", "--server", url, "--job", job, "--input", input,
		"--reducers", reducers, "--chunk-size", chunk, "--wait"}
	if p, ok := jobParams[job]; ok {
		args = append(args, "--params", p)
	}
	code, stdout, stderr := runBin(t, bin, jobWait, args...)
	if code != 0 {
		t.Fatalf("tabreduce submit %s: exit %d, want 0; stderr:\n%s", job, code, stderr)
	}
	return lastLine(stdout)
}

// fetchOutput is what `tabreduce output ID` prints.
func fetchOutput(t *testing.T, bin, url, id string) string {
	t.Helper()
	code, stdout, stderr := runBin(t, bin, jobWait, "output", "--server", url, id)
	if code != 0 {
		t.Fatalf("tabreduce output %s: exit %d, want 0; stderr:\n%s", id, code, stderr)
	}
	return stdout
}

// checkOutput compares a job's output with the oracle's and reports the
// first line that differs.
func checkOutput(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.SplitAfter(got, "\n"), strings.SplitAfter(want, "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	at := func(ls []string) string {
		if i < len(ls) {
			return ls[i]
		}
		return "(end)"
	}
	t.Errorf("%s: output differs from the oracle at line %d: got %q, want %q (got %d lines, %d bytes; want %d lines, %d bytes)",
		what, i+1, at(g), at(w), len(g)-1, len(got), len(w)-1, len(want))
}

func getJob(t *testing.T, url, id string) apiclient.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), procWait)
	defer cancel()
	j, err := apiclient.New(url, "").Job(ctx, id)
	if err != nil {
		t.Fatalf("GET job %s: %v", id, err)
	}
	return j
}

// pollUntil polls a job every statusPoll until cond holds and returns the
// status that satisfied it. The job ending first fails the test: the phase
// ran faster than the polls could catch.
func pollUntil(t *testing.T, c *apiclient.Client, id, what string, cond func(apiclient.Job) bool) apiclient.Job {
	t.Helper()
	deadline := time.Now().Add(jobWait)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), procWait)
		j, err := c.Job(ctx, id)
		cancel()
		if err != nil {
			t.Fatalf("GET job %s while waiting for %s: %v", id, what, err)
		}
		if cond(j) {
			return j
		}
		if j.State.Finished() {
			t.Fatalf("job %s ended %s before it could be caught %s (map %+v, reduce %+v); want it caught",
				id, j.State, what, j.Phases[engine.PhaseMap], j.Phases[engine.PhaseReduce])
		}
		time.Sleep(statusPoll)
	}
	t.Fatalf("job %s not %s after %v, want it there", id, what, jobWait)
	return apiclient.Job{}
}

// waitDone waits for a job to end and requires it done.
func waitDone(t testing.TB, url, id string) apiclient.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), jobWait)
	defer cancel()
	j, err := apiclient.New(url, "").WaitJob(ctx, id, 20*time.Millisecond, nil)
	if err != nil || j.State != engine.StateDone {
		t.Fatalf("job %s: %s (%s), %v; want done within %v", id, j.State, j.Error, err, jobWait)
	}
	return j
}

// jobQueues lists the server's queues whose names start with prefix
// ("job." for every job's).
func jobQueues(t *testing.T, url, prefix string) []string {
	t.Helper()
	st, body, err := call(http.MethodGet, url+"/q", "", nil)
	var names []string
	if err != nil || st != http.StatusOK || json.Unmarshal(body, &names) != nil {
		t.Fatalf("GET /q: %d %s %v, want 200 with the queue names", st, body, err)
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// corpus and oracles

// genCorpus returns about size bytes of text, the same for the same seed:
// lines that are documents "id<TAB>text" (some ids with a backslash) or bare
// text, words from a vocabulary of a few thousand with mixed case and
// non-ASCII ones, punctuation, empty lines, a few CRLF line ends, and a last
// line without a newline. Tabs, CRs and backslashes in the output exercise
// the TSV escaping.
func genCorpus(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	common := []string{"the", "The", "of", "École", "école", "straße", "STRASSE", "東京", "ΣΊΣΥΦΟΣ", "naïve",
		"x²", "zeta42", `back\slash`, "don't", "e-mail", "ERROR:", "Errors"}
	seps := []string{" ", " ", " ", ", ", ". ", "; ", "\t"}
	var b bytes.Buffer
	for line := 0; b.Len() < size; line++ {
		switch r.IntN(4) {
		case 0:
			fmt.Fprintf(&b, "doc%06d\t", line)
		case 1:
			fmt.Fprintf(&b, `id\%d`+"\t", line)
		}
		for i := range r.IntN(16) {
			if i > 0 {
				b.WriteString(seps[r.IntN(len(seps))])
			}
			if r.IntN(3) == 0 {
				b.WriteString(common[r.IntN(len(common))])
				continue
			}
			w := "w" + strconv.FormatInt(int64(r.IntN(4000)), 36)
			if r.IntN(5) == 0 {
				w = strings.ToUpper(w)
			}
			b.WriteString(w)
		}
		if r.IntN(10) == 0 {
			b.WriteByte('\r')
		}
		b.WriteByte('\n')
	}
	b.WriteString("the last line, without a newline: Error")
	return b.Bytes()
}

// isSep separates words: anything but a Unicode letter or digit.
func isSep(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }

// wordcountOracle counts words: strings.FieldsFunc, ToLower and a map.
func wordcountOracle(text string) map[string]string {
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(text, isSep) {
		counts[strings.ToLower(w)]++
	}
	out := make(map[string]string, len(counts))
	for w, n := range counts {
		out[w] = strconv.Itoa(n)
	}
	return out
}

// wordTotal is the number of words the counts add up to.
func wordTotal(counts map[string]string) int64 {
	var n int64
	for _, c := range counts {
		v, _ := strconv.ParseInt(c, 10, 64)
		n += v
	}
	return n
}

// grepOracle keys each line that matches pattern by its byte offset.
func grepOracle(text, pattern string) map[string]string {
	re := regexp.MustCompile(pattern)
	out := map[string]string{}
	offset := 0
	for line := range strings.SplitAfterSeq(text, "\n") {
		if body := strings.TrimSuffix(line, "\n"); re.MatchString(body) {
			out[fmt.Sprintf("%016d", offset)] = body
		}
		offset += len(line)
	}
	return out
}

// invertedIndexOracle maps each word to the sorted, comma-separated ids of
// the lines holding it; a line without a tab has its byte offset as id.
func invertedIndexOracle(text string) map[string]string {
	index := map[string]map[string]bool{}
	offset := 0
	for line := range strings.SplitAfterSeq(text, "\n") {
		id, doc, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if !ok {
			id, doc = strconv.Itoa(offset), strings.TrimSuffix(line, "\n")
		}
		offset += len(line)
		for _, w := range strings.FieldsFunc(doc, isSep) {
			w = strings.ToLower(w)
			if index[w] == nil {
				index[w] = map[string]bool{}
			}
			index[w][id] = true
		}
	}
	out := make(map[string]string, len(index))
	for w, ids := range index {
		out[w] = strings.Join(slices.Sorted(maps.Keys(ids)), ",")
	}
	return out
}

// tsvEscaper escapes keys and values as `tabreduce output` does.
var tsvEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// oracleTSV renders pairs as `tabreduce output` prints them: key<TAB>value
// lines sorted by key, bytewise.
func oracleTSV(pairs map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(pairs)) {
		b.WriteString(tsvEscaper.Replace(k) + "\t" + tsvEscaper.Replace(pairs[k]) + "\n")
	}
	return b.String()
}
