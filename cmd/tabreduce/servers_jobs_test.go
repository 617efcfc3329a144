package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

// Jobs on several servers sharing one Redis: submitted on one, run by
// workers on another, coordinated by whichever server holds the job's
// lease, and finished exactly when that server is killed or Redis restarts.

// TestServersRunJobs runs the scenarios in parallel, each on its own
// redis-server.
func TestServersRunJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary and redis-server")
	}
	bin := tabreduceBin(t)
	corpus := writeCorpus(t, genCorpus(corpusSize/2, 7))
	t.Run("workers only on B, submitted on A", func(t *testing.T) { t.Parallel(); testWorkersElsewhere(t, bin, corpus) })
	t.Run("kill -9 the coordinator mid-map and mid-reduce", func(t *testing.T) { t.Parallel(); testCoordinatorKill(t, bin, corpus) })
	t.Run("Redis restarts mid-job", func(t *testing.T) { t.Parallel(); testRedisRestart(t, bin, corpus) })
}

// testWorkersElsewhere uploads a wordcount module on A and submits a job
// of it there, whose only workers are on B, and reads the output on A and
// on B: both equal the oracle. The module is no built-in (its bytes carry
// a custom section of their own), so B's workers can only have had it from
// B, which can only have had it from the shared blob store. Every worker
// of the service is listed on A, with its server.
func testWorkersElsewhere(t *testing.T, bin string, corpus corpusFile) {
	store := startRedis(t, "everysec").URL("svc")
	a, b := startShared(t, bin, store, "A"), startShared(t, bin, store, "B")
	startWorkers(t, bin, b.url)
	ca := apiclient.New(a.url, "")
	waitListed(t, ca, 2, "B")
	built, _ := jobs.Modules()
	wc := built["wordcount"]
	if wc == nil {
		t.Fatal("the wordcount built-in is missing: run make jobs")
	}
	// A custom section (id 0, 9 bytes: a 4-byte name and 4 bytes of
	// payload) changes the module's sha256, not what it does.
	own := append(slices.Clip(wc), 0, 9, 4, 'c', 'o', 'p', 'y', 'e', 'l', 's', 'e')
	mod, err := ca.UploadModuleNamed(t.Context(), bytes.NewReader(own), "wordcount-copy")
	if err != nil {
		t.Fatalf("upload on A: %v", err)
	}
	if jobs.SHAs()[mod.SHA256] {
		t.Fatalf("the uploaded module %s is a built-in's", mod.SHA256)
	}
	job, err := ca.SubmitJob(t.Context(), engine.Spec{Module: mod.SHA256, Reducers: 8, ChunkSize: 16 << 10}, apiclient.FileInput(corpus.path))
	if err != nil {
		t.Fatalf("submit on A: %v", err)
	}
	if job.ModuleSHA != mod.SHA256 {
		t.Fatalf("job runs module %s, want the uploaded %s", job.ModuleSHA, mod.SHA256)
	}
	final := waitDone(t, a.url, job.ID)
	checkOutput(t, "wordcount submitted on A, run on B, read on A", fetchOutput(t, bin, a.url, job.ID), corpus.want["wordcount"])
	checkOutput(t, "the same job read on B", fetchOutput(t, bin, b.url, job.ID), corpus.want["wordcount"])
	checkCounted(t, "on A", final, corpus)
	if got := getJob(t, b.url, job.ID); got.State != engine.StateDone || got.Records != int64(len(corpus.counts)) {
		t.Errorf("job on B: %s with %d records, want done with %d", got.State, got.Records, len(corpus.counts))
	}
}

// waitListed waits until c lists n workers of server, with their server.
func waitListed(t *testing.T, c *apiclient.Client, n int, server string) {
	t.Helper()
	deadline := time.Now().Add(workersWait)
	for {
		got := 0
		for _, w := range listWorkers(t, c) {
			if w.Server == server && !w.Flagged {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers of server %s listed after %v, want %d: %+v", got, server, workersWait, n, listWorkers(t, c))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testCoordinatorKill runs wordcount on three servers with a worker each,
// kills the job's coordinator with SIGKILL mid-map, then the next one
// mid-reduce, and checks that the last server finishes it with the
// oracle's output: no result lost, none counted twice.
func testCoordinatorKill(t *testing.T, bin string, corpus corpusFile) {
	const reducers = 256
	store := startRedis(t, "always").URL("svc")
	servers := map[string]*proc{}
	workers := map[string]*proc{}
	for _, name := range []string{"A", "B", "C"} {
		servers[name] = startShared(t, bin, store, name)
		workers[name] = startWorker(t, bin, servers[name].url, "w"+name, 2)
	}
	job, err := apiclient.New(servers["A"].url, "").SubmitJob(t.Context(),
		engine.Spec{Module: "wordcount", Reducers: reducers, ChunkSize: 2 << 10}, apiclient.FileInput(corpus.path))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	mapTotal := job.Phases[engine.PhaseMap].Total
	killCoordinator(t, servers, workers, job.ID, engine.PhaseMap, func(done int) bool { return done >= mapTotal/4 && done < mapTotal })
	killCoordinator(t, servers, workers, job.ID, engine.PhaseReduce, func(done int) bool { return done >= 1 && done < reducers })
	var last *proc
	for _, p := range servers {
		last = p
	}
	final := waitDone(t, last.url, job.ID)
	checkOutput(t, "wordcount after its coordinator was killed twice", fetchOutput(t, bin, last.url, job.ID), corpus.want["wordcount"])
	checkCounted(t, "after two coordinator kills", final, corpus)
	if final.Coordinator != "" {
		t.Errorf("a done job still names coordinator %q", final.Coordinator)
	}
}

// killCoordinator waits on any live server until the job is in phase with
// a done count that satisfies mid and a coordinator named, kills that
// server (SIGKILL) and its worker, and waits until another server
// coordinates the job.
func killCoordinator(t *testing.T, servers, workers map[string]*proc, id string, phase engine.Phase, mid func(done int) bool) {
	t.Helper()
	state := map[engine.Phase]engine.State{engine.PhaseMap: engine.StateMapping, engine.PhaseReduce: engine.StateReducing}[phase]
	var watch *proc
	for _, p := range servers {
		watch = p
		break
	}
	seen := pollUntil(t, apiclient.New(watch.url, ""), id, "mid-"+string(phase)+" with a coordinator", func(j apiclient.Job) bool {
		return j.State == state && mid(j.Phases[phase].Done) && servers[j.Coordinator] != nil
	})
	victim := seen.Coordinator
	servers[victim].kill(t)
	workers[victim].kill(t)
	delete(servers, victim)
	delete(workers, victim)
	killed := time.Now()
	for _, p := range servers {
		watch = p
		break
	}
	after := pollUntil(t, apiclient.New(watch.url, ""), id, "coordinated again after the kill", func(j apiclient.Job) bool {
		return j.Coordinator != "" && j.Coordinator != victim
	})
	if got := after.Phases[phase]; got.Done < seen.Phases[phase].Done {
		t.Errorf("after the kill of coordinator %s mid-%s: %d tasks done, %d before", victim, phase, got.Done, seen.Phases[phase].Done)
	}
	t.Logf("killed coordinator %s mid-%s at %d/%d tasks done; %s took over %v later",
		victim, phase, seen.Phases[phase].Done, seen.Phases[phase].Total, after.Coordinator, time.Since(killed).Round(100*time.Millisecond))
	if d := time.Since(killed); d > 3*coordLeaseForTests {
		t.Errorf("coordination took %v to move, want within %v", d, 3*coordLeaseForTests)
	}
}

// coordLeaseForTests is the engine's coordination lease (engine's
// coordLease): a coordinator's death is noticed within it.
const coordLeaseForTests = 5 * time.Second

// testRedisRestart kills redis-server (appendfsync always) mid-map and
// starts it again on its append-only file: the servers reconnect and the
// job finishes with the oracle's output.
func testRedisRestart(t *testing.T, bin string, corpus corpusFile) {
	rs := startRedis(t, "always")
	store := rs.URL("svc")
	a, b := startShared(t, bin, store, "A"), startShared(t, bin, store, "B")
	startWorker(t, bin, a.url, "wA", 2)
	startWorker(t, bin, b.url, "wB", 2)
	ca := apiclient.New(a.url, "")
	job, err := ca.SubmitJob(t.Context(), engine.Spec{Module: "wordcount", Reducers: 16, ChunkSize: 2 << 10}, apiclient.FileInput(corpus.path))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	mapTotal := job.Phases[engine.PhaseMap].Total
	seen := pollUntil(t, ca, job.ID, "mid-map", func(j apiclient.Job) bool {
		return j.State == engine.StateMapping && j.Phases[engine.PhaseMap].Done >= mapTotal/4 && j.Phases[engine.PhaseMap].Done < mapTotal
	})
	if err := rs.Restart(true); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
	t.Logf("redis-server killed and restarted mid-map at %d/%d tasks done", seen.Phases[engine.PhaseMap].Done, mapTotal)
	final := waitDone(t, b.url, job.ID)
	checkOutput(t, "wordcount across a Redis restart", fetchOutput(t, bin, b.url, job.ID), corpus.want["wordcount"])
	checkCounted(t, "across a Redis restart", final, corpus)
}

// TestServersShareBans flags a cheating worker on A and checks that B
// refuses it too, and lists it as flagged; then a second cheater at the
// same address is caught on B, and A refuses the address.
func TestServersShareBans(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary and redis-server")
	}
	bin := tabreduceBin(t)
	store := startRedis(t, "everysec").URL("svc")
	a, b := startShared(t, bin, store, "A"), startShared(t, bin, store, "B")
	ca, cb := apiclient.New(a.url, ""), apiclient.New(b.url, "")
	startWorker(t, bin, a.url, "good-0", 2)
	bad := startProc(t, bin, "worker bad-0 (faulty) on A", append(workerArgs(a.url, "bad-0", 2), "--faulty", "1")...)
	waitListed(t, ca, 2, "A")
	corpus := writeCorpus(t, genCorpus(64<<10, 3))
	// replicate checks every result, so the cheater is caught in every run
	// (spotcheck samples one in ten: some 30 tasks escape in a few runs of
	// a hundred).
	job, err := ca.SubmitJob(t.Context(), engine.Spec{Module: "wordcount", Reducers: 2, ChunkSize: 1 << 10, Verify: engine.VerifyReplicate}, apiclient.FileInput(corpus.path))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	waitDone(t, a.url, job.ID)
	checkOutput(t, "wordcount with a cheater on A", fetchOutput(t, bin, a.url, job.ID), corpus.want["wordcount"])
	if waitLog(bad, sessionEnded, 1, procWait) < 1 {
		t.Fatalf("the cheater's session on A never ended; stderr:\n%s", tail(bad.stderr.String(), 4<<10))
	}
	bad.kill(t)
	flaggedOn := func(c *apiclient.Client) bool {
		for _, w := range listWorkers(t, c) {
			if w.Name == "bad-0" && w.Flagged {
				return true
			}
		}
		return false
	}
	if !flaggedOn(ca) {
		t.Fatal("the cheater is not listed as flagged on A")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !flaggedOn(cb) {
		if time.Now().After(deadline) {
			t.Fatal("the cheater flagged on A is not listed as flagged on B")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The same worker (address, name, user agent) tries B: refused.
	again := startProc(t, bin, "worker bad-0 (faulty) on B", append(workerArgs(b.url, "bad-0", 2), "--faulty", "1")...)
	if waitLog(again, sessionEnded, 1, procWait) < 1 || strings.Contains(again.stderr.String(), sessionStarted) {
		t.Fatalf("the cheater flagged on A was not refused by B; stderr:\n%s", tail(again.stderr.String(), 4<<10))
	}
	if !strings.Contains(again.stderr.String(), "refused") {
		t.Errorf("B's refusal does not say why; stderr:\n%s", tail(again.stderr.String(), 4<<10))
	}
	ctx, cancel := context.WithTimeout(t.Context(), procWait)
	defer cancel()
	if ws, err := cb.Workers(ctx); err != nil {
		t.Fatal(err)
	} else {
		for _, w := range ws {
			if w.Name == "bad-0" && !w.Flagged {
				t.Errorf("B lists the cheater unflagged: %+v", w)
			}
		}
	}

	// A second cheater at the same address, under another name, is caught
	// on B (replicate checks its every result). That is the address's
	// second catch in the service, one on each server: the address is now
	// refused everywhere, so a worker there that says hello to A under a
	// third name is refused by A, which caught only one of the two.
	bad1 := startProc(t, bin, "worker bad-1 (faulty) on B", append(workerArgs(b.url, "bad-1", 2), "--faulty", "1")...)
	waitListed(t, cb, 1, "B") // else good-0 on A may run the whole job before it says hello
	job2, err := cb.SubmitJob(t.Context(), engine.Spec{Module: "wordcount", Reducers: 2, ChunkSize: 1 << 10, Verify: engine.VerifyReplicate}, apiclient.FileInput(corpus.path))
	if err != nil {
		t.Fatalf("submit on B: %v", err)
	}
	if waitLog(bad1, sessionEnded, 1, jobWait) < 1 {
		t.Fatalf("the second cheater's session on B never ended; stderr:\n%s", tail(bad1.stderr.String(), 4<<10))
	}
	bad1.kill(t)
	waitDone(t, b.url, job2.ID)
	checkOutput(t, "wordcount with a second cheater on B", fetchOutput(t, bin, b.url, job2.ID), corpus.want["wordcount"])
	fresh := startWorker(t, bin, a.url, "fresh-0", 2)
	if waitLog(fresh, sessionEnded, 1, procWait) < 1 || strings.Contains(fresh.stderr.String(), sessionStarted) {
		t.Fatalf("A took a worker from an address caught twice in the service (once on A, once on B); stderr:\n%s", tail(fresh.stderr.String(), 4<<10))
	}
}
