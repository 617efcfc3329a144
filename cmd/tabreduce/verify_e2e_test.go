package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

// The verification end-to-end tests run `tabreduce serve` with honest
// native workers and adversarial ones (`tabreduce worker --faulty`, whose
// wrong results are well framed, sorted and partitioned: only verification
// can catch them), submit wordcount with `submit --verify MODE`, and compare
// the output with the oracle byte for byte.

// Bounds of the verification end-to-end tests.
const (
	workersWait = 30 * time.Second // every worker process up and connected
	// verifyCorpus bytes in 1 KiB chunks make about 200 map tasks.
	verifyCorpus = 200 << 10
	// faultyLogLine is what a --faulty worker logs for each result it
	// corrupts; sessionStarted and sessionEnded are what every worker logs
	// when the server welcomes it and when a session ends.
	faultyLogLine  = "result corrupted on purpose"
	sessionStarted = "worker session started"
	sessionEnded   = "worker session ended"
)

// verifyCase is one cluster and one job under a verification mode.
type verifyCase struct {
	name   string
	mode   engine.Verify
	honest int // honest workers, one slot each
	faulty int // adversarial workers
	// fraction is their --faulty, slots their --slots.
	fraction string
	slots    int
	corpus   int // bytes of input, cut in 1 KiB chunks
	// corrupt: the job's output is expected wrong (no verification, or
	// trusted workers) and the adversarial workers unflagged; otherwise the
	// output must equal the oracle's and every adversarial worker must be
	// flagged.
	corrupt bool
	// token, if set, is the server's operator token, which every worker and
	// client presents: the workers are trusted.
	token string
}

// TestVerifyE2E runs each mode on its own server, in parallel. Adaptive is
// the test: 10 % of the worker processes adversarial. Replicate
// and spotcheck use smaller pools; "none" shows that the harness sees
// corruption when nothing verifies, and the trusted case that the
// operator's token exempts a worker from verification (so it must be
// given only to workers the operator runs).
func TestVerifyE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if _, err := jobs.Builtin("wordcount"); errors.Is(err, jobs.ErrNotBuilt) {
		t.Fatal("built-in job wordcount is not embedded: run `make jobs` before `go test` (`make test` does)")
	}
	bin := tabreduceBin(t)
	cases := []verifyCase{
		{name: "adaptive, 1 of 10 workers adversarial", mode: engine.VerifyAdaptive, honest: 9, faulty: 1,
			fraction: "0.5", slots: 1, corpus: verifyCorpus},
		// Every task on two workers: one adversarial among four.
		{name: "replicate", mode: engine.VerifyReplicate, honest: 3, faulty: 1, fraction: "1", slots: 1, corpus: 40 << 10},
		// The server re-runs a sample of tasks. The cheat takes most tasks
		// (two slots against one) and always cheats, so that a sample
		// catches it before the job ends in all but about 1e-6 of runs.
		{name: "spotcheck", mode: engine.VerifySpotcheck, honest: 1, faulty: 1, fraction: "1", slots: 2, corpus: verifyCorpus},
		{name: "none lets corruption through", mode: engine.VerifyNone, honest: 1, faulty: 1, fraction: "1", slots: 2,
			corpus: 40 << 10, corrupt: true},
		// The operator's token makes a worker trusted: never verified.
		{name: "trusted workers skip verification", mode: engine.VerifyReplicate, honest: 1, faulty: 1, fraction: "1", slots: 2,
			corpus: 40 << 10, corrupt: true, token: "operator-secret"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			corpus := writeCorpus(t, genCorpus(tc.corpus, uint64(100+i)))
			runVerifyCase(t, bin, tc, corpus)
		})
	}
}

func runVerifyCase(t *testing.T, bin string, tc verifyCase, corpus corpusFile) {
	var auth []string // --token for every command, if the server has one
	if tc.token != "" {
		auth = []string{"--token", tc.token}
	}
	srv := startBroker(t, bin, t.TempDir(), "never", auth...)
	var bad []*proc
	for i := range tc.honest {
		name := fmt.Sprintf("good-%d", i)
		startProc(t, bin, "worker "+name, append(workerArgs(srv.url, name, 1), auth...)...)
	}
	for i := range tc.faulty {
		name := fmt.Sprintf("bad-%d", i)
		args := append(workerArgs(srv.url, name, tc.slots), append([]string{"--faulty", tc.fraction}, auth...)...)
		bad = append(bad, startProc(t, bin, "worker "+name+" (faulty)", args...))
	}
	c := apiclient.New(srv.url, tc.token)
	waitWorkers(t, c, tc.honest+tc.faulty)
	warmUp(t, bin, c, srv.url, auth, tc.honest+tc.faulty)
	before := make([]int, len(bad)) // results corrupted in the warm-up
	for i, p := range bad {
		before[i] = strings.Count(p.stderr.String(), faultyLogLine)
	}

	start := time.Now()
	code, stdout, stderr := runBin(t, bin, jobWait, append([]string{"submit", "--server", srv.url, "--job", "wordcount",
		"--input", corpus.path, "--reducers", "3", "--chunk-size", "1KiB", "--verify", string(tc.mode), "--wait"}, auth...)...)
	if code != 0 {
		t.Fatalf("tabreduce submit --verify %s: exit %d, want 0; stderr:\n%s", tc.mode, code, stderr)
	}
	id := lastLine(stdout)
	ctx, cancel := context.WithTimeout(t.Context(), procWait)
	job, err := c.Job(ctx, id)
	cancel()
	if err != nil {
		t.Fatalf("GET job %s: %v", id, err)
	}
	corrupted := 0
	for i, p := range bad {
		corrupted += strings.Count(p.stderr.String(), faultyLogLine) - before[i]
	}
	v := job.Verification
	t.Logf("job %s (verify %s, %d map tasks) done in %v: %d results corrupted on purpose; replicas %d, probes %d, spot checks %d, mismatches %d, reruns %d",
		id, job.Spec.Verify, job.Phases[engine.PhaseMap].Total, time.Since(start).Round(time.Millisecond), corrupted,
		v.Replicas, v.Probes, v.SpotChecks, v.Mismatches, v.Reruns)
	if job.Spec.Verify != tc.mode {
		t.Errorf("job %s has verify %q, want %q (from submit --verify)", id, job.Spec.Verify, tc.mode)
	}
	if corrupted == 0 {
		t.Fatalf("the --faulty %s workers corrupted no result, want some: the test would prove nothing", tc.fraction)
	}
	code, got, stderr := runBin(t, bin, jobWait, append([]string{"output", "--server", srv.url, id}, auth...)...)
	if code != 0 {
		t.Fatalf("tabreduce output %s: exit %d, want 0; stderr:\n%s", id, code, stderr)
	}
	if tc.corrupt {
		if got == corpus.want["wordcount"] {
			t.Errorf("%s, %d corrupted results: output equals the oracle's, want it wrong", tc.name, corrupted)
		}
		if v != (engine.VerifyCounts{}) {
			t.Errorf("%s: verification counts %+v, want all zero", tc.name, v)
		}
	} else {
		checkOutput(t, fmt.Sprintf("wordcount, verify %s, %d results corrupted", tc.mode, corrupted), got, corpus.want["wordcount"])
		if v.Mismatches == 0 {
			t.Errorf("verify %s: %d corrupted results and no mismatch counted, want at least one", tc.mode, corrupted)
		}
	}
	checkStanding(t, c, tc, bad)
}

// warmUp runs small wordcount jobs that verify nothing (no worker's
// standing changes) until each of the n workers has returned a result, so
// that every worker has compiled the module before the job under test
// starts. Else, on a loaded machine, the workers that compile last get
// almost no tasks of a short job, and an adversarial one among them may
// corrupt none.
func warmUp(t *testing.T, bin string, c *apiclient.Client, url string, auth []string, n int) {
	t.Helper()
	corpus := writeCorpus(t, genCorpus(n*4<<10, 99))
	deadline := time.Now().Add(workersWait)
	for {
		code, _, stderr := runBin(t, bin, jobWait, append([]string{"submit", "--server", url, "--job", "wordcount",
			"--input", corpus.path, "--reducers", "1", "--chunk-size", "1KiB", "--verify", "none", "--wait"}, auth...)...)
		if code != 0 {
			t.Fatalf("warm-up job: tabreduce submit: exit %d, want 0; stderr:\n%s", code, stderr)
		}
		cold := 0
		for _, w := range listWorkers(t, c) {
			if w.TasksDone == 0 {
				cold++
			}
		}
		if cold == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d workers have returned no result after %v of warm-up jobs", cold, n, workersWait)
		}
	}
}

// waitWorkers waits until n workers are connected and none is flagged, so
// that the job is spread over all of them.
func waitWorkers(t *testing.T, c *apiclient.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(workersWait)
	for {
		ws := listWorkers(t, c)
		if len(ws) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers listed after %v, want %d", len(ws), workersWait, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listWorkers(t *testing.T, c *apiclient.Client) []engine.WorkerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), procWait)
	defer cancel()
	ws, err := c.Workers(ctx)
	if err != nil {
		t.Fatalf("GET /api/v1/workers: %v", err)
	}
	return ws
}

// checkStanding checks what the worker list says after the job: no honest
// worker flagged, and every adversarial one flagged (unless tc.corrupt),
// disconnected and refused when it tries again: its process saw its session
// end and then its reconnection end, and it was welcomed only once.
func checkStanding(t *testing.T, c *apiclient.Client, tc verifyCase, bad []*proc) {
	t.Helper()
	flagged := map[string]bool{}
	for _, w := range listWorkers(t, c) {
		if w.Trusted != (tc.token != "") {
			t.Errorf("worker %s: trusted %v, want %v (the server's token presented: %v)", w.Name, w.Trusted, tc.token != "", tc.token != "")
		}
		switch {
		case strings.HasPrefix(w.Name, "good-") && w.Flagged:
			t.Errorf("honest worker %s (%s) is flagged, want it in good standing: %+v", w.Name, w.ID, w.Standing)
		case strings.HasPrefix(w.Name, "bad-") && w.Flagged:
			flagged[w.Name] = true
		case strings.HasPrefix(w.Name, "bad-") && !tc.corrupt:
			t.Errorf("adversarial worker %s (%s) listed unflagged (standing %+v), want only its flagged entry", w.Name, w.ID, w.Standing)
		}
	}
	for i, p := range bad {
		name := "bad-" + strconv.Itoa(i)
		if tc.corrupt {
			if flagged[name] || strings.Contains(p.stderr.String(), sessionEnded) {
				t.Errorf("%s: %s flagged %v or disconnected, want it left alone; stderr:\n%s",
					tc.name, name, flagged[name], tail(p.stderr.String(), 2<<10))
			}
			continue
		}
		if !flagged[name] {
			t.Errorf("adversarial worker %s is not listed as flagged, want it flagged", name)
			continue
		}
		ended := waitLog(p, sessionEnded, 2, procWait)
		if n := strings.Count(p.stderr.String(), sessionStarted); ended < 2 || n != 1 {
			t.Errorf("flagged worker %s: %d sessions started, %d ended; want it welcomed once, disconnected and refused (1 started, ≥ 2 ended); stderr:\n%s",
				name, n, ended, tail(p.stderr.String(), 4<<10))
		}
	}
}

// waitLog waits until line appears n times in p's stderr (at most limit)
// and returns how often it appeared.
func waitLog(p *proc, line string, n int, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		got := strings.Count(p.stderr.String(), line)
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}
