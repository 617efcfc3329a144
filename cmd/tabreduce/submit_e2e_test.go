package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/buntstore"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// End-to-end submissions that must not succeed: a job whose module fails,
// and requests the server must refuse without leaving anything behind.

// testModuleTraps submits a module whose map exits (a trap: the instance is
// gone), panics or returns an error on its only chunk: the worker (without
// the token, so untrusted) reports the failure, the server's own run of the
// task confirms it, and the job fails at once with the module's message;
// `submit --wait` exits 1 saying so on one line, and the job's queues are
// gone.
func testModuleTraps(t *testing.T, bin string) {
	module := filepath.Join(t.TempDir(), "trap.wasm")
	if err := os.WriteFile(module, wasmtest.Module(t, "./testdata/trap"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv := startBroker(t, bin, dir, "always")
	startWorker(t, bin, srv.url, "w1", 2)
	var ids []string
	tests := []struct{ input, kind, message string }{
		{"exit\nnow\n", "trap: ", "trap job: exiting on purpose"},
		{"panic\nnow\n", "job error: ", "trap job: panicking on purpose"},
		{"error\nnow\n", "job error: ", "trap job: failing on purpose"},
	}
	for _, tt := range tests {
		t.Run(strings.SplitN(tt.input, "\n", 2)[0], func(t *testing.T) {
			input := filepath.Join(t.TempDir(), "in.txt")
			if err := os.WriteFile(input, []byte(tt.input), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runBin(t, bin, jobWait, "submit", "--server", srv.url, "--job", module,
				"--input", input, "--max-attempts", "2", "--wait")
			id := lastLine(stdout)
			ids = append(ids, id)
			failLine := ""
			for _, l := range strings.Split(stderr, "\n") {
				if strings.HasPrefix(l, "tabreduce submit: job "+id+" failed:") {
					failLine = l
				}
			}
			const confirmed = "the server's own run failed too: "
			if code != 1 || !strings.Contains(failLine, confirmed) || !strings.Contains(failLine, tt.kind) || !strings.Contains(failLine, tt.message) {
				t.Fatalf("submit --wait: exit %d, failure line %q; want exit 1 and one line \"tabreduce submit: job %s failed: …%s…%s… %s…\"; stderr:\n%s",
					code, failLine, id, tt.kind, tt.message, confirmed, stderr)
			}
			j := getJob(t, srv.url, id)
			if p := j.Phases[engine.PhaseMap]; j.State != engine.StateFailed || !strings.Contains(j.Error, tt.message) || p.Failed != 1 {
				t.Errorf("job %s: state %s, error %q, %d failed map attempts; want failed, an error with %q, 1 attempt (confirmed)",
					id, j.State, j.Error, p.Failed, tt.message)
			}
		})
	}
	// The failed task's message was dead-lettered to the map queue's .dead
	// queue: the job's cleanup purges that too.
	srv.kill(t)
	queues, _ := storeContents(t, dir)
	for _, id := range ids {
		if qs := withPrefix(queues, "job/"+id+"/"); len(qs) > 0 {
			t.Errorf("queues left after job %s failed: %q; want none (the job's cleanup purges its queues)", id, qs)
		}
	}
}

// badSubmission is one malformed job request.
type badSubmission struct {
	name   string
	ctype  string
	body   func() io.Reader
	status int
	err    string // what the {"error": ...} must say
}

// multipartSubmission is a multipart/form-data request of fields (name,
// value) and, after them, input file parts, sent chunked as the CLI sends
// it (no Content-Length: the server learns the size as it reads).
func multipartSubmission(name string, status int, errText string, fields []string, inputs ...string) badSubmission {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = mw.WriteField(fields[i], fields[i+1])
	}
	for i, in := range inputs {
		w, _ := mw.CreateFormFile("input", fmt.Sprintf("in%d.txt", i))
		_, _ = io.WriteString(w, in)
	}
	_ = mw.Close()
	return badSubmission{name: "multipart/" + name, ctype: mw.FormDataContentType(), status: status, err: errText,
		body: func() io.Reader { return io.MultiReader(bytes.NewReader(buf.Bytes())) }}
}

func jsonSubmission(name string, status int, errText, body string) badSubmission {
	return badSubmission{name: "json/" + name, ctype: "application/json", status: status, err: errText,
		body: func() io.Reader { return strings.NewReader(body) }}
}

// testMalformedSubmissions sends malformed job submissions, as multipart and
// as JSON, to a server with a small --max-input: each gets its 4xx with a
// JSON error that says what is wrong, and leaves no job, no job queue and
// no input directory behind.
func testMalformedSubmissions(t *testing.T, bin string) {
	const maxInput = 64 << 10
	dir := t.TempDir()
	srv := startBroker(t, bin, dir, "always", "--max-input", "64KiB")
	unknownSHA := strings.Repeat("ab", 32)
	big := strings.Repeat("too much input\n", maxInput/15+100)
	bigJSON, _ := json.Marshal(big)
	tooLarge := fmt.Sprintf("larger than %d bytes", maxInput)
	cases := []badSubmission{
		multipartSubmission("no module", 400, "module is required", []string{"reducers", "2"}, "a b\n"),
		multipartSubmission("unknown sha256", 404, unknownSHA, []string{"module", unknownSHA}, "a b\n"),
		multipartSubmission("unknown built-in", 404, "nosuchjob", []string{"module", "nosuchjob"}, "a b\n"),
		multipartSubmission("params not JSON", 400, "params must be JSON", []string{"params", "{pattern", "module", "grep"}, "a b\n"),
		multipartSubmission("empty input", 400, "the input is empty", []string{"module", "wordcount"}, ""),
		multipartSubmission("no input", 400, "no input", []string{"module", "wordcount"}),
		multipartSubmission("input over --max-input", 413, tooLarge, []string{"module", "wordcount"}, "a b\n", big),
		multipartSubmission("reducers -1", 400, "reducers must be between 1 and 1024, got -1", []string{"reducers", "-1", "module", "wordcount"}, "a b\n"),
		multipartSubmission("chunk_size too big", 400, "chunk_size must be between", []string{"chunk_size", "1073741824", "module", "wordcount"}, "a b\n"),
		multipartSubmission("module part not wasm", 400, "bad module", []string{"module", "\x00asm not really"}, "a b\n"),
		jsonSubmission("no module", 400, "module is required", `{"reducers": 2, "input": "a b\n"}`),
		jsonSubmission("unknown sha256", 404, unknownSHA, `{"module": "`+unknownSHA+`", "input": "a b\n"}`),
		jsonSubmission("params not JSON", 400, "malformed JSON body", `{"module": "grep", "params": {pattern}, "input": "a b\n"}`),
		jsonSubmission("empty input", 400, "the input is empty", `{"module": "wordcount", "input": ""}`),
		jsonSubmission("no input", 400, "no input", `{"module": "wordcount"}`),
		jsonSubmission("input over --max-input", 413, tooLarge, `{"module": "wordcount", "input": `+string(bigJSON)+`}`),
		jsonSubmission("reducers below 1", 400, "reducers must be between 1 and 1024, got -1", `{"module": "wordcount", "reducers": -1, "input": "a\n"}`),
		jsonSubmission("chunk_size too big", 400, "chunk_size must be between", `{"module": "wordcount", "chunk_size": 1073741824, "input": "a\n"}`),
		jsonSubmission("unknown field", 400, "unknown field", `{"module": "wordcount", "reducerz": 2, "input": "a\n"}`),
	}
	for _, sub := range cases {
		t.Run(sub.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.url+"/api/v1/jobs", sub.body())
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", sub.ctype)
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatalf("POST /api/v1/jobs: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct{ Code, Error string }
			if resp.StatusCode != sub.status || json.Unmarshal(body, &e) != nil || e.Error == "" || e.Code == "" || !strings.Contains(e.Error, sub.err) {
				t.Errorf("got %d %s; want %d with {\"code\": …, \"error\": \"…%s…\"}", resp.StatusCode, bytes.TrimSpace(body), sub.status, sub.err)
			}
			checkNothingLeft(t, srv.url, dir)
		})
	}
	// The job's queues and records are internal: read the store itself.
	srv.kill(t)
	if queues, records := storeContents(t, dir); len(withPrefix(queues, "job/")) > 0 || len(records) > 0 {
		t.Errorf("after the malformed submissions the store holds job queues %q and records %q, want none", queues, records)
	}

	// A server on the same data takes a well-formed submission, and the
	// checks above see what it leaves: they would have caught a leftover.
	srv = startBroker(t, bin, dir, "always", "--max-input", "64KiB")
	st, body, err := call(http.MethodPost, srv.url+"/api/v1/jobs", "application/json", []byte(`{"module": "wordcount", "input": "a b\n"}`))
	if err != nil || st != http.StatusCreated {
		t.Fatalf("well-formed submission: %d %s %v, want 201", st, body, err)
	}
	jobs := getJobs(t, srv.url)
	srv.kill(t)
	queues, records := storeContents(t, dir)
	if len(jobs) != 1 || len(withPrefix(queues, "job/"+jobs[0].ID+"/map")) != 1 || len(records) != 1 {
		t.Errorf("after a well-formed submission: %d jobs, job queues %q, records %q; want 1 job, its map queue and its record", len(jobs), queues, records)
	}
}

// storeContents opens the store of a stopped server in dir and returns its
// queues' names and its records' keys.
func storeContents(t *testing.T, dir string) (queues, records []string) {
	t.Helper()
	s, err := buntstore.Open(dir, buntstore.Options{Fsync: buntstore.FsyncNever})
	if err != nil {
		t.Fatalf("open the store in %s: %v", dir, err)
	}
	defer s.Close()
	qs, err := s.QueueList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		queues = append(queues, q.Name)
	}
	recs, err := s.RecordScan(t.Context(), broker.RecordScanParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		records = append(records, r.Key)
	}
	return queues, records
}

func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// checkNothingLeft checks that the server holds no job and no job input
// directory (its queues are checked in the store once it stops).
func checkNothingLeft(t *testing.T, url, dataDir string) {
	t.Helper()
	if jobs := getJobs(t, url); len(jobs) > 0 {
		t.Errorf("GET /api/v1/jobs lists %d jobs (first %s, %s), want none", len(jobs), jobs[0].ID, jobs[0].State)
	}
	if qs := jobQueues(t, url, "job"); len(qs) > 0 {
		t.Errorf("GET /q lists job queues %q, want none", qs)
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "jobs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s is left in the data directory, want no job input", filepath.Join("jobs", e.Name()))
	}
}

// listJobs is GET /api/v1/jobs.
func getJobs(t *testing.T, url string) []engine.Status {
	t.Helper()
	st, body, err := call(http.MethodGet, url+"/api/v1/jobs", "", nil)
	var out struct{ Jobs []engine.Status }
	if err != nil || st != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("GET /api/v1/jobs: %d %s %v, want 200 with the jobs", st, body, err)
	}
	return out.Jobs
}
