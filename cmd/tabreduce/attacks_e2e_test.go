package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

// The engine's state is out of public reach. Each case is an attack that
// worked when job records shared the public key/value space and task queues
// were ordinary queues, replayed against the real binary: it must now be
// refused, or reach nothing of the engine's, and the job it aimed at must
// still give the oracle's output.

// TestEngineOutOfReach runs every attack on a server of its own.
func TestEngineOutOfReach(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if _, err := jobs.Builtin("wordcount"); errors.Is(err, jobs.ErrNotBuilt) {
		t.Fatal("built-in job wordcount is not embedded: run `make jobs` before `go test` (`make test` does)")
	}
	bin := tabreduceBin(t)
	text := genCorpus(200_000, 9)
	corpus := writeCorpus(t, text)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, bin string, corpus corpusFile)
	}{
		{"forged records in the key/value space", testForgedRecords},
		{"task queues are not public", testTaskQueuesRefused},
		{"output cannot be drained by readers", testOutputNotDrained},
		{"pause holds a streaming job", testPauseHoldsStream},
		{"a COMET consumer of output_queue gets the output", testOutputQueueCOMET},
		{"engine traffic is counted", testEngineTrafficCounted},
		{"FLUSHDB spares the engine", testFlushSparesEngine},
		{"one server per data directory", testDataDirLocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, bin, corpus)
		})
	}
}

// wantRefused checks an answer is status with a {"code", "error"} body
// whose error mentions sub.
func wantRefused(t *testing.T, what string, status int, body []byte, want int, sub string) {
	t.Helper()
	var e api.Error
	if status != want || json.Unmarshal(body, &e) != nil || e.Code == "" || !strings.Contains(e.Message, sub) {
		t.Errorf("%s: %d %s; want %d with {\"code\", \"error\": \"…%s…\"}", what, status, strings.TrimSpace(string(body)), want, sub)
	}
}

// submitOnly submits a wordcount job with the CLI and returns its id at
// once, without waiting; extra are more flags.
func submitOnly(t *testing.T, bin, url, input string, extra ...string) string {
	t.Helper()
	args := append([]string{"submit", "--server", url, "--job", "wordcount", "--input", input, "--reducers", "2", "--chunk-size", "16KiB"}, extra...)
	code, stdout, stderr := runBin(t, bin, jobWait, args...)
	if code != 0 {
		t.Fatalf("tabreduce submit: exit %d; stderr:\n%s", code, stderr)
	}
	return lastLine(stdout)
}

// The attack: a job record forged through PUT /kv and POST /kv/mset (an
// unreadable one; one whose id climbs out of the data directory; one whose
// input file is /etc/passwd) used to stop the server at its next start,
// delete a directory outside the data directory, or send /etc/passwd to
// workers. The key/value space reaches no record: the server starts, lists
// no job, and everything outside is untouched.
func testForgedRecords(t *testing.T, bin string, corpus corpusFile) {
	dir := t.TempDir()
	victim := filepath.Join(filepath.Dir(dir), "victim-"+filepath.Base(dir))
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(victim) })
	srv := startBroker(t, bin, dir, "always")
	sha := strings.Repeat("a", 64)
	forged := map[string]any{
		"job/evil":           map[string]any{"id": "../../" + filepath.Base(victim), "state": "failed", "module": sha, "submitted": time.Now()},
		"job/leak":           map[string]any{"id": "leak", "state": "queued", "module": sha, "map_tasks": 1, "bytes_in": 10, "submitted": time.Now(), "files": []map[string]any{{"name": "p", "path": "/etc/passwd", "size": 10}}},
		"jobtask/leak/map/1": map[string]any{"in": 1},
	}
	body, _ := json.Marshal(forged)
	if st, b, err := call(http.MethodPost, srv.url+"/kv/mset", "application/json", body); err != nil || st != http.StatusOK {
		t.Fatalf("POST /kv/mset: %d %s %v", st, b, err)
	}
	if st, b, err := call(http.MethodPut, srv.url+"/kv/job/zzz", "application/json", []byte(`"x"`)); err != nil || st != http.StatusOK {
		t.Fatalf("PUT /kv/job/zzz: %d %s %v", st, b, err)
	}
	srv.kill(t)
	srv = startBroker(t, bin, dir, "always") // waits for it to listen: it starts
	st, b, err := call(http.MethodGet, srv.url+"/api/v1/jobs", "", nil)
	var listing struct {
		Jobs     []json.RawMessage `json:"jobs"`
		SetAside []json.RawMessage `json:"set_aside"`
	}
	if err != nil || st != http.StatusOK || json.Unmarshal(b, &listing) != nil || len(listing.Jobs) != 0 || len(listing.SetAside) != 0 {
		t.Errorf("GET /api/v1/jobs after the restart: %d %s %v; want no job and nothing set aside", st, b, err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("the directory outside the data directory: %v", err)
	}
	if st, b, _ := call(http.MethodGet, srv.url+"/kv/job/zzz", "", nil); st != http.StatusOK || strings.TrimSpace(string(b)) != `"x"` {
		t.Errorf("the public key job/zzz: %d %s; want it kept as written", st, b)
	}
	// The server still runs jobs exactly.
	startWorker(t, bin, srv.url, "w", 2)
	id := submitWait(t, bin, srv.url, "wordcount", corpus.path, "2", "16KiB")
	checkOutput(t, "wordcount after forged records", fetchOutput(t, bin, srv.url, id), corpus.want["wordcount"])
}

// The attacks: one message pushed to a job's map queue ({"f":0,"o":0,
// "n":-1,"g":0}) killed the dispatcher, and two hard gets of it left the
// job mapping forever. A task queue's name holds '/', which no public
// route takes; the old dotted name is just a queue of its own.
func testTaskQueuesRefused(t *testing.T, bin string, corpus corpusFile) {
	srv := startBroker(t, bin, t.TempDir(), "always")
	id := submitOnly(t, bin, srv.url, corpus.path)
	mapq := url.PathEscape("job/" + id + "/map")
	forged := []byte(`{"f":0,"o":0,"n":-1,"g":0}`)
	for _, r := range []struct {
		method, path, ctype string
		body                []byte
	}{
		{http.MethodPost, "/q/" + mapq, "text/plain", forged},
		{http.MethodGet, "/q/" + mapq, "", nil},
		{http.MethodGet, "/q/" + mapq, "", nil},
		{http.MethodDelete, "/q/" + mapq, "", nil},
		{http.MethodGet, "/c/" + mapq, "", nil},
		{http.MethodPost, "/api/v1/queues/" + mapq + "/messages", "application/json", []byte(`["x"]`)},
		{http.MethodPost, "/api/v1/queues/" + mapq + "/lease", "", nil},
		{http.MethodPost, "/control/" + mapq, "application/x-www-form-urlencoded", []byte("status=stop")},
		{http.MethodGet, "/stats/" + mapq, "", nil},
		{http.MethodPost, "/queue", "application/json", []byte(`{"cmd":"take","queue":"job/` + id + `/map"}`)},
	} {
		st, b, err := call(r.method, srv.url+r.path, r.ctype, r.body)
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, r.method+" "+r.path, st, b, http.StatusBadRequest, "queue name")
	}
	// The old name is a public queue like any other: pushing to it and
	// taking from it touches no job.
	old := "job." + id + ".map"
	if st, b, _ := call(http.MethodPost, srv.url+"/q/"+old, "text/plain", forged); st != http.StatusOK {
		t.Errorf("POST /q/%s: %d %s, want an ordinary push", old, st, b)
	}
	if st, b, _ := call(http.MethodGet, srv.url+"/q/"+old, "", nil); st != http.StatusOK {
		t.Errorf("GET /q/%s: %d %s, want the message back", old, st, b)
	}
	if qs := jobQueues(t, srv.url, "job/"); len(qs) > 0 {
		t.Errorf("GET /q lists the engine's queues %q", qs)
	}
	st, b, _ := call(http.MethodGet, srv.url+"/stats", "", nil)
	if st != http.StatusOK || strings.Contains(string(b), "job/") {
		t.Errorf("GET /stats shows the engine's queues: %d %s", st, b)
	}
	startWorker(t, bin, srv.url, "w", 2)
	waitDone(t, srv.url, id)
	checkOutput(t, "wordcount after the attacks on its task queue", fetchOutput(t, bin, srv.url, id), corpus.want["wordcount"])
}

// The attack: with --public-read '*', five anonymous hard gets of a done
// job's output queue emptied its output while the job still said done. The
// output queue is internal; the job's output stays whole.
func testOutputNotDrained(t *testing.T, bin string, corpus corpusFile) {
	const token = "operator"
	srv := startBroker(t, bin, t.TempDir(), "always", "--token", token, "--public-read", "*")
	startProc(t, bin, "worker w", append(workerArgs(srv.url, "w", 2), "--token", token)...)
	code, stdout, stderr := runBin(t, bin, jobWait, "submit", "--server", srv.url, "--token", token, "--job", "wordcount",
		"--input", corpus.path, "--reducers", "2", "--chunk-size", "16KiB", "--wait")
	if code != 0 {
		t.Fatalf("submit: exit %d; stderr:\n%s", code, stderr)
	}
	id := lastLine(stdout)
	for range 5 {
		st, b, err := call(http.MethodGet, srv.url+"/q/"+url.PathEscape("job/"+id+"/out"), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, "anonymous GET of the output queue", st, b, http.StatusBadRequest, "queue name")
	}
	code, got, stderr := runBin(t, bin, jobWait, "output", "--server", srv.url, "--token", token, id)
	if code != 0 {
		t.Fatalf("output: exit %d; stderr:\n%s", code, stderr)
	}
	checkOutput(t, "wordcount after five anonymous reads", got, corpus.want["wordcount"])
}

// The attack that was a bug: a queue paused with /control was still
// drained by a streaming job. Pause holds on every path: while "events" is
// paused a streaming job on it maps nothing, though a second streaming job
// on another queue maps all it gets meanwhile; once resumed, it maps all.
func testPauseHoldsStream(t *testing.T, bin string, _ corpusFile) {
	srv := startBroker(t, bin, t.TempDir(), "always")
	form := "application/x-www-form-urlencoded"
	if st, b, _ := call(http.MethodPost, srv.url+"/control/events", form, []byte("status=stop")); st != http.StatusOK {
		t.Fatalf("pause events: %d %s", st, b)
	}
	held := submitStream(t, bin, srv.url, "events", "events-out")
	free := submitStream(t, bin, srv.url, "other", "other-out")
	for i := range 3 {
		push(t, srv.url, "events", fmt.Sprintf("held word%d", i))
		push(t, srv.url, "other", fmt.Sprintf("free word%d", i))
	}
	startWorker(t, bin, srv.url, "w", 2)
	c := apiclient.New(srv.url, "")
	pollUntil(t, c, free, "its three messages mapped", func(j apiclient.Job) bool { return j.Phases[engine.PhaseMap].Done == 3 })
	if j := getJob(t, srv.url, held); j.Phases[engine.PhaseMap].Done != 0 || queueLen(t, srv.url, "events") != 3 {
		t.Fatalf("while events is paused the stream on it mapped %d messages (events holds %d); want none",
			j.Phases[engine.PhaseMap].Done, queueLen(t, srv.url, "events"))
	}
	if st, b, _ := call(http.MethodPost, srv.url+"/control/events", form, []byte("status=start")); st != http.StatusOK {
		t.Fatalf("resume events: %d %s", st, b)
	}
	pollUntil(t, c, held, "its three messages mapped once resumed", func(j apiclient.Job) bool { return j.Phases[engine.PhaseMap].Done == 3 })
}

func submitStream(t *testing.T, bin, url, in, out string) string {
	t.Helper()
	code, stdout, stderr := runBin(t, bin, jobWait, "submit", "--server", url, "--job", "wordcount",
		"--input-queue", in, "--output-queue", out, "--stream")
	if code != 0 {
		t.Fatalf("submit --stream: exit %d; stderr:\n%s", code, stderr)
	}
	return lastLine(stdout)
}

func push(t *testing.T, url, queue, value string) {
	t.Helper()
	if st, b, err := call(http.MethodPost, url+"/q/"+queue, "text/plain", []byte(value)); err != nil || st != http.StatusOK {
		t.Fatalf("push to %s: %d %s %v", queue, st, b, err)
	}
}

func queueLen(t *testing.T, url, queue string) int64 {
	t.Helper()
	st, b, err := call(http.MethodGet, url+"/stats/"+queue, "", nil)
	var s struct {
		Len int64 `json:"len"`
	}
	if err != nil || st != http.StatusOK || json.Unmarshal(b, &s) != nil {
		t.Fatalf("GET /stats/%s: %d %s %v", queue, st, b, err)
	}
	return s.Len
}

// RestMQ's workflow: map in the workers, post the results to a queue. A
// COMET consumer of the job's output_queue, connected before the job runs,
// reads exactly the job's output as it is committed; and the job's own
// output is still whole after it did.
func testOutputQueueCOMET(t *testing.T, bin string, corpus corpusFile) {
	srv := startBroker(t, bin, t.TempDir(), "always")
	ctx, cancel := context.WithTimeout(t.Context(), jobWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/c/results", nil)
	resp, err := (&http.Client{}).Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("COMET /c/results: %v %v", resp, err)
	}
	defer resp.Body.Close()
	startWorker(t, bin, srv.url, "w", 2)
	id := submitOnly(t, bin, srv.url, corpus.path, "--output-queue", "results")
	want := wordcountPairs(corpus.want["wordcount"])
	got := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for len(got) < len(want) && sc.Scan() {
		var m struct{ Value string }
		var p api.PairJSON
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || json.Unmarshal([]byte(m.Value), &p) != nil || p.Key == nil || p.Value == nil {
			t.Fatalf("COMET line %q is not a message holding {\"key\", \"value\"}: %v", sc.Bytes(), err)
		}
		if _, dup := got[*p.Key]; dup {
			t.Fatalf("key %q posted twice", *p.Key)
		}
		got[*p.Key] = *p.Value
	}
	if !maps.Equal(got, want) {
		t.Errorf("COMET got %d records, the job's output has %d; they differ", len(got), len(want))
	}
	waitDone(t, srv.url, id)
	checkOutput(t, "the job's own output after its output_queue was drained", fetchOutput(t, bin, srv.url, id), corpus.want["wordcount"])
}

// wordcountPairs parses key<TAB>value lines (the oracle's TSV; no escapes
// in wordcount's words).
func wordcountPairs(tsv string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(tsv, "\n"), "\n") {
		k, v, _ := strings.Cut(l, "\t")
		out[k] = v
	}
	return out
}

var leaseOpsRE = regexp.MustCompile(`(?m)^tabreduce_broker_operations_total\{op="lease"\} (\d+)`)

// The broker's counters (and so /metrics) saw none of the engine's
// traffic. Every task is leased through the broker now.
func testEngineTrafficCounted(t *testing.T, bin string, corpus corpusFile) {
	srv := startBroker(t, bin, t.TempDir(), "always")
	startWorker(t, bin, srv.url, "w", 2)
	id := submitWait(t, bin, srv.url, "wordcount", corpus.path, "2", "16KiB")
	j := getJob(t, srv.url, id)
	st, b, err := call(http.MethodGet, srv.url+"/metrics", "", nil)
	m := leaseOpsRE.FindSubmatch(b)
	if err != nil || st != http.StatusOK || m == nil {
		t.Fatalf("GET /metrics: %d %v; no lease count", st, err)
	}
	n, _ := strconv.Atoi(string(m[1]))
	if tasks := j.Phases[engine.PhaseMap].Total + j.Phases[engine.PhaseReduce].Total; n < tasks {
		t.Errorf("the broker counted %d leases; the job ran %d tasks", n, tasks)
	}
}

var redisAddrRE = regexp.MustCompile(`redis protocol on (127\.0\.0\.1:\d+)`)

// FLUSHDB over the Redis protocol clears the public namespace (queues,
// keys) and nothing of the engine's: a job waiting for workers runs to its
// exact end after it.
func testFlushSparesEngine(t *testing.T, bin string, corpus corpusFile) {
	srv := startBroker(t, bin, t.TempDir(), "always", "--redis-addr", "127.0.0.1:0")
	m := srv.waitFor(t, redisAddrRE, "the Redis address")
	id := submitOnly(t, bin, srv.url, corpus.path)
	push(t, srv.url, "public", "x")
	if st, b, _ := call(http.MethodPut, srv.url+"/kv/k", "application/json", []byte(`1`)); st != http.StatusOK {
		t.Fatalf("PUT /kv/k: %d %s", st, b)
	}
	conn, err := net.DialTimeout("tcp", m[1], procWait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(procWait))
	if _, err := conn.Write([]byte("*1\r\n$7\r\nFLUSHDB\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("FLUSHDB: %q, %v; want +OK", line, err)
	}
	if st, _, _ := call(http.MethodGet, srv.url+"/kv/k", "", nil); st != http.StatusNotFound {
		t.Errorf("GET /kv/k after FLUSHDB: %d, want 404", st)
	}
	if n := queueLen(t, srv.url, "public"); n != 0 {
		t.Errorf("queue public holds %d after FLUSHDB, want 0", n)
	}
	startWorker(t, bin, srv.url, "w", 2)
	waitDone(t, srv.url, id)
	checkOutput(t, "wordcount after FLUSHDB", fetchOutput(t, bin, srv.url, id), corpus.want["wordcount"])
}

// Two servers on one data directory would both recover each other's
// leases; the second is refused at once, with one line that says why.
func testDataDirLocked(t *testing.T, bin string, _ corpusFile) {
	dir := t.TempDir()
	startBroker(t, bin, dir, "never")
	code, _, stderr := runBin(t, bin, jobWait, "serve", "--addr", "127.0.0.1:0", "--data", dir)
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") > 0 || !strings.Contains(stderr, "in use by another tabreduce process") {
		t.Errorf("a second server on one data directory: exit %d, stderr %q; want a refusal in one line", code, stderr)
	}
}
