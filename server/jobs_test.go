package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/servertest"
	"github.com/tabreduce/tabreduce/wasm/modenc"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// jobDone bounds how long a small job may take from submission to done.
const jobDone = 60 * time.Second

// wordcountInput and its wordcount output, sorted by key, as `tabreduce run`
// prints them.
const (
	wordcountInput = "b a\nc, A b\tB\n"
	wordcountTSV   = "a\t2\nb\t3\nc\t1\n"
)

// formPart is one part of a multipart body: a field, or a file when file
// is set.
type formPart struct {
	name, file, value string
}

func field(name, value string) formPart { return formPart{name: name, value: value} }

func inputFile(file, content string) formPart {
	return formPart{name: "input", file: file, value: content}
}

// multipartBody writes the parts, in order, as multipart/form-data.
func multipartBody(t *testing.T, parts []formPart) (*bytes.Buffer, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.file != "" {
			w, err = mw.CreateFormFile(p.name, p.file)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p.value)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &body, mw.FormDataContentType()
}

// postJob posts the parts to /api/v1/jobs with a Content-Length.
func (s *testServer) postJob(parts ...formPart) response {
	s.t.Helper()
	body, ctype := multipartBody(s.t, parts)
	return s.do(http.MethodPost, "/api/v1/jobs", body, "Content-Type", ctype)
}

// postJobChunked posts the parts to /api/v1/jobs without a Content-Length.
func (s *testServer) postJobChunked(parts ...formPart) response {
	s.t.Helper()
	body, ctype := multipartBody(s.t, parts)
	return s.do(http.MethodPost, "/api/v1/jobs", io.MultiReader(body), "Content-Type", ctype)
}

// jobReply is the answer about a job: its status and its routes.
type jobReply struct {
	engine.Status
	URLs struct {
		Self   string `json:"self"`
		Output string `json:"output"`
	} `json:"urls"`
}

// submit submits a job with parts and wants a 201.
func (s *testServer) submit(parts ...formPart) jobReply {
	s.t.Helper()
	j := decode[jobReply](s.t, s.postJob(parts...).want(s.t, http.StatusCreated))
	if j.ID == "" || j.URLs.Self != "/api/v1/jobs/"+j.ID || j.URLs.Output != j.URLs.Self+"/output" {
		s.t.Fatalf("submitted job: want an id and its urls, got %+v", j)
	}
	return j
}

// startWorker runs a worker for the server until the test ends.
func (s *testServer) startWorker() {
	s.t.Helper()
	servertest.StartWorker(s.t, s.URL(), s.token)
}

// waitJob polls a job until it is finished and wants it done.
func (s *testServer) waitJob(id string) jobReply {
	s.t.Helper()
	deadline := time.Now().Add(jobDone)
	for {
		j := decode[jobReply](s.t, s.get("/api/v1/jobs/"+id).want(s.t, http.StatusOK))
		if j.State.Finished() {
			if j.State != engine.StateDone {
				s.t.Fatalf("job %s ended %s: %s", id, j.State, j.Error)
			}
			return j
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %s not done after %v: %+v", id, jobDone, j.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSubmitJobRefused covers what is refused before the engine takes a
// job: every case answers with a clear error, and none needs a job to run.
func TestSubmitJobRefused(t *testing.T) {
	s := startServer(t, server.Config{})
	in := inputFile("in.txt", wordcountInput)
	wc := field("module", "wordcount")
	tests := []struct {
		name   string
		parts  []formPart
		status int
		subs   []string
	}{
		{"params not JSON", []formPart{field("params", "{pattern"), in, wc}, 400, []string{"params must be JSON"}},
		{"reducers -1", []formPart{field("reducers", "-1"), in, wc}, 400, []string{"reducers must be between 1 and 1024", "got -1"}},
		{"reducers 2000", []formPart{field("reducers", "2000"), in, wc}, 400, []string{"reducers must be between 1 and 1024"}},
		{"reducers not a number", []formPart{field("reducers", "four"), in, wc}, 400, []string{"reducers must be a number"}},
		{"chunk_size too small", []formPart{field("chunk_size", "-10"), in, wc}, 400, []string{"chunk_size must be between 1 and 67108864 bytes"}},
		{"chunk_size too large", []formPart{field("chunk_size", "134217728"), in, wc}, 400, []string{"chunk_size"}},
		{"max_attempts -1", []formPart{field("max_attempts", "-1"), in, wc}, 400, []string{"max_attempts must be between 1 and 100"}},
		{"max_attempts 101", []formPart{field("max_attempts", "101"), in, wc}, 400, []string{"max_attempts"}},
		{"task_timeout 0.5", []formPart{field("task_timeout", "0.5"), in, wc}, 400, []string{"task_timeout must be between 1 and 3600 seconds"}},
		{"task_timeout 4000", []formPart{field("task_timeout", "4000"), in, wc}, 400, []string{"task_timeout"}},
		{"task_timeout NaN", []formPart{field("task_timeout", "NaN"), in, wc}, 400, []string{"task_timeout"}},
		{"stream not a bool", []formPart{field("stream", "maybe"), in, wc}, 400, []string{"stream must be true or false"}},
		{"unknown field", []formPart{field("colour", "red"), in, wc}, 400, []string{`unknown field "colour"`}},
		{"unknown verify", []formPart{field("verify", "paranoid"), in, wc}, 400,
			[]string{`verify "paranoid" must be none, replicate, adaptive or spotcheck`}},
		{"no input", []formPart{wc}, 400, []string{"no input"}},
		{"empty input", []formPart{inputFile("a.txt", ""), inputFile("b.txt", ""), wc}, 400, []string{"input is empty"}},
		{"stream without a queue", []formPart{field("stream", "true"), in, wc}, 400, []string{"stream needs input_queue"}},
		{"queue and files", []formPart{field("input_queue", "lines"), in, wc}, 400, []string{"not both"}},
		{"bad queue name", []formPart{field("input_queue", "no/slash"), wc}, 400, []string{"queue name"}},
		{"bad output queue name", []formPart{field("output_queue", "job/1/out"), in, wc}, 400, []string{"queue name"}},
		{"no module", []formPart{field("input_queue", "lines")}, 400, []string{"module is required"}},
		{"unknown module", []formPart{field("module", "nosuchjob"), in}, 404, []string{"module not found", "nosuchjob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.postJob(tt.parts...).wantError(t, tt.status, tt.subs...)
		})
	}
}

func TestSubmitJobJSONRefused(t *testing.T) {
	s := startServer(t, server.Config{})
	tests := []struct {
		name, body string
		status     int
		sub        string
	}{
		{"malformed", `{"module":`, 400, "malformed JSON"},
		{"unknown field", `{"module":"wordcount","input":"a","colour":"red"}`, 400, `unknown field "colour"`},
		{"reducers 5000", `{"module":"wordcount","input":"a","reducers":5000}`, 400, "reducers must be between 1 and 1024"},
		{"negative chunk_size", `{"module":"wordcount","input":"a","chunk_size":-1}`, 400, "chunk_size"},
		{"fractional reducers", `{"module":"wordcount","input":"a","reducers":1.5}`, 400, "malformed JSON"},
		{"empty inline input", `{"module":"wordcount","input":""}`, 400, "input is empty"},
		{"no input", `{"module":"wordcount"}`, 400, "no input"},
		{"unknown module", `{"module":"nosuchjob","input":"a"}`, 404, "nosuchjob"},
		{"unknown verify", `{"module":"wordcount","input":"a","verify":"Adaptive"}`, 400, `verify "Adaptive" must be none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.postJSON("/api/v1/jobs", tt.body).wantError(t, tt.status, tt.sub)
		})
	}
}

// TestSubmitJobVerify: the verification mode given as a multipart field or
// in JSON is the job's; none given is adaptive.
func TestSubmitJobVerify(t *testing.T) {
	s := startServer(t, server.Config{})
	in := inputFile("in.txt", wordcountInput)
	for _, mode := range []engine.Verify{engine.VerifyNone, engine.VerifyReplicate, engine.VerifyAdaptive, engine.VerifySpotcheck} {
		if j := s.submit(field("verify", string(mode)), in, field("module", "wordcount")); j.Spec.Verify != mode {
			t.Errorf("multipart verify=%s: job has verify %q, want %q", mode, j.Spec.Verify, mode)
		}
	}
	j := decode[jobReply](t, s.postJSON("/api/v1/jobs", `{"module":"wordcount","input":"a b","verify":"spotcheck"}`).want(t, http.StatusCreated))
	if j.Spec.Verify != engine.VerifySpotcheck {
		t.Errorf("JSON verify spotcheck: job has verify %q, want spotcheck", j.Spec.Verify)
	}
	if j := s.submit(in, field("module", "wordcount")); j.Spec.Verify != engine.VerifyAdaptive {
		t.Errorf("no verify: job has verify %q, want the default, adaptive", j.Spec.Verify)
	}
}

// TestJobRoutesNeedToken: writes and reads need the token; modules are
// open to everyone, since volunteers' browsers fetch them.
func TestJobRoutesNeedToken(t *testing.T) {
	s := startServer(t, server.Config{Token: "sesame"}).as("")
	for _, r := range []struct{ method, path string }{
		{"POST", "/api/v1/jobs"}, {"GET", "/api/v1/jobs"}, {"GET", "/api/v1/jobs/x"},
		{"DELETE", "/api/v1/jobs/x"}, {"GET", "/api/v1/jobs/x/output"},
		{"POST", "/api/v1/modules"}, {"GET", "/api/v1/modules"}, {"GET", "/api/v1/workers"},
	} {
		s.do(r.method, r.path, strings.NewReader("{}")).wantError(t, http.StatusUnauthorized, "Bearer")
	}
	s.get("/modules/"+strings.Repeat("0", 63)+".wasm").wantError(t, http.StatusNotFound, "module not found")
}

// TestSubmitJobOwnBodyLimit: MaxBody does not bound a job submission;
// MaxInput does.
func TestSubmitJobOwnBodyLimit(t *testing.T) {
	s := startServer(t, server.Config{MaxBody: 64 << 10, MaxInput: 256 << 10})
	// 100 KiB of params, over MaxBody: the refusal is about reducers.
	params := field("params", `"`+strings.Repeat("p", 100<<10)+`"`)
	s.postJob(params, field("reducers", "-3")).wantError(t, http.StatusBadRequest, "reducers")
	// Over MaxInput, with a Content-Length: refused before it is read.
	big := inputFile("big.txt", strings.Repeat("x\n", 200<<10))
	s.postJob(big, field("module", "wordcount")).wantError(t, http.StatusRequestEntityTooLarge, "larger than 262144 bytes")
}

func TestModuleRoutesRefused(t *testing.T) {
	s := startServer(t, server.Config{})
	s.do(http.MethodPost, "/api/v1/modules", nil, "Content-Type", "application/wasm").wantError(t, http.StatusBadRequest, "empty")
	sha := strings.Repeat("ab", 32)
	for _, path := range []string{"/modules/nothex.wasm", "/modules/" + sha + ".txt", "/modules/" + strings.ToUpper(sha) + ".wasm", "/modules/" + sha} {
		s.get(path).wantError(t, http.StatusNotFound, "module not found")
	}
	s.get("/api/v1/jobs/x/output?format=xml").wantError(t, http.StatusBadRequest, "format must be ndjson or tsv")
}

func TestWorkersList(t *testing.T) {
	s := startServer(t, server.Config{})
	r := s.get("/api/v1/workers").want(t, http.StatusOK)
	if ws := decode[map[string][]engine.WorkerInfo](t, r); ws["workers"] == nil {
		t.Fatalf(`%v: want {"workers": [...]}`, r)
	}
}

// The tests below run jobs on a real worker connected over /api/v1/ws/worker.

func TestJobFlow(t *testing.T) {
	s := startServer(t, server.Config{})
	s.startWorker()
	j := s.submit(field("reducers", "3"), field("module", "wordcount"),
		inputFile("one.txt", "b a\n"), inputFile("empty.txt", ""), inputFile("two.txt", "c, A b\tB\n"))
	if j.Spec.Reducers != 3 || j.Spec.Module != "wordcount" || j.BytesIn != int64(len(wordcountInput)) {
		t.Errorf("submitted: want reducers 3, module wordcount, %d bytes in; got %+v", len(wordcountInput), j.Status)
	}
	done := s.waitJob(j.ID)
	if done.Records != 3 || done.Finished == nil {
		t.Errorf("done: want 3 records and a finish time, got %+v", done.Status)
	}
	if got := s.get(j.URLs.Output+"?format=tsv").want(t, http.StatusOK); string(got.Body) != wordcountTSV {
		t.Errorf("TSV output: want %q, got %q", wordcountTSV, got.Body)
	}
	r := s.get(j.URLs.Output).want(t, http.StatusOK)
	if want := "{\"key\":\"a\",\"value\":\"2\"}\n{\"key\":\"b\",\"value\":\"3\"}\n{\"key\":\"c\",\"value\":\"1\"}\n"; string(r.Body) != want {
		t.Errorf("NDJSON output: want %q, got %q", want, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("NDJSON output: Content-Type %q", ct)
	}
	jobs := decode[struct {
		Jobs []jobReply `json:"jobs"`
	}](t, s.get("/api/v1/jobs").want(t, http.StatusOK)).Jobs
	if len(jobs) != 1 || jobs[0].ID != j.ID || jobs[0].URLs.Self != j.URLs.Self {
		t.Errorf("jobs: want the one job, got %+v", jobs)
	}
	s.get("/api/v1/jobs/nosuchjob").wantError(t, http.StatusNotFound, "job not found")
	s.get("/api/v1/jobs/nosuchjob/output").wantError(t, http.StatusNotFound, "job not found")
	s.do(http.MethodDelete, "/api/v1/jobs/nosuchjob", nil).wantError(t, http.StatusNotFound, "job not found")
}

func TestSubmitJobJSONInline(t *testing.T) {
	s := startServer(t, server.Config{})
	s.startWorker()
	r := s.postJSON("/api/v1/jobs", map[string]any{"module": "wordcount", "input": wordcountInput, "reducers": 2})
	j := decode[jobReply](t, r.want(t, http.StatusCreated))
	s.waitJob(j.ID)
	if got := s.get(j.URLs.Output+"?format=tsv").want(t, http.StatusOK); string(got.Body) != wordcountTSV {
		t.Errorf("TSV output: want %q, got %q", wordcountTSV, got.Body)
	}
}

// TestSubmitJobLargerThanMaxBody: an input over MaxBody, sent without a
// Content-Length, is taken; one over MaxInput is a 413.
func TestSubmitJobLargerThanMaxBody(t *testing.T) {
	s := startServer(t, server.Config{MaxBody: 64 << 10, MaxInput: 1 << 20})
	s.startWorker()
	line := "lorem ipsum dolor\n"
	n := (256 << 10) / len(line)
	j := decode[jobReply](t, s.postJobChunked(field("module", "wordcount"), inputFile("big.txt", strings.Repeat(line, n))).want(t, http.StatusCreated))
	s.waitJob(j.ID)
	got := string(s.get(j.URLs.Output+"?format=tsv").want(t, http.StatusOK).Body)
	if want := fmt.Sprintf("dolor\t%d\nipsum\t%d\nlorem\t%d\n", n, n, n); got != want {
		t.Errorf("output: want %q, got %q", want, got)
	}
	s.postJobChunked(field("module", "wordcount"), inputFile("huge.txt", strings.Repeat(line, 2*(1<<20)/len(line)))).
		wantError(t, http.StatusRequestEntityTooLarge, "larger than")
}

func TestModuleUploadAndServe(t *testing.T) {
	s := startServer(t, server.Config{Token: "sesame"})
	s.startWorker()
	wasm := wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/wordcount")
	sum := sha256.Sum256(wasm)
	sha := hex.EncodeToString(sum[:])
	r := s.do(http.MethodPost, "/api/v1/modules", bytes.NewReader(wasm), "Content-Type", "application/wasm").want(t, http.StatusCreated)
	if m := decode[map[string]any](t, r); m["sha256"] != sha || m["size"] != float64(len(wasm)) {
		t.Fatalf("%v: want sha256 %s and size %d", r, sha, len(wasm))
	}
	checkModuleServed(t, s.as(""), sha, wasm, modenc.UploadQuality)

	list := decode[struct {
		Modules []engine.ModuleInfo `json:"modules"`
	}](t, s.get("/api/v1/modules").want(t, http.StatusOK)).Modules
	if !slices.ContainsFunc(list, func(m engine.ModuleInfo) bool { return m.SHA256 == sha }) ||
		!slices.ContainsFunc(list, func(m engine.ModuleInfo) bool { return m.Builtin && m.Name == "wordcount" }) {
		t.Errorf("modules: want the upload and the built-in wordcount, got %+v", list)
	}
	j := s.submit(field("module", sha), inputFile("in.txt", wordcountInput))
	if s.waitJob(j.ID).ModuleSHA != sha {
		t.Errorf("job ran module %s, want %s", j.ModuleSHA, sha)
	}
	s.do(http.MethodPost, "/api/v1/modules", strings.NewReader("hello"), "Content-Type", "application/wasm").wantError(t, http.StatusBadRequest, "invalid argument")
}

// checkModuleServed fetches a module in every coding and checks the bytes
// decode to wasm, the headers, and that the compressed forms are smaller
// than the module by what compression at that brotli quality gives.
func checkModuleServed(t *testing.T, s *testServer, sha string, wasm []byte, quality int) {
	t.Helper()
	for _, c := range []struct{ accept, enc string }{
		{"identity", modenc.Identity}, {"gzip", modenc.Gzip}, {"gzip, deflate, br, zstd", modenc.Brotli}, {"br;q=0, gzip", modenc.Gzip},
	} {
		got := s.get("/modules/"+sha+".wasm", "Accept-Encoding", c.accept).want(t, http.StatusOK)
		if e := got.Header.Get("Content-Encoding"); e != c.enc {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q, want %q", c.accept, e, c.enc)
		}
		body, err := modenc.Decode(bytes.NewReader(got.Body), c.enc, 1<<30)
		if err != nil || !bytes.Equal(body, wasm) {
			t.Fatalf("Accept-Encoding %q: the body does not decode to the module (%v)", c.accept, err)
		}
		if c.enc != modenc.Identity && len(got.Body) > len(wasm)*35/100 {
			t.Errorf("%s: %d bytes for a %d-byte module: want at most 35 %%", c.enc, len(got.Body), len(wasm))
		}
		etag := `"` + sha + `"`
		if c.enc != modenc.Identity {
			etag = `"` + sha + "." + c.enc + `"`
		}
		for h, want := range map[string]string{
			"Content-Type": "application/wasm", "ETag": etag, "Vary": "Accept-Encoding",
			"Cache-Control": "public, max-age=31536000, immutable",
		} {
			if v := got.Header.Get(h); v != want {
				t.Errorf("Accept-Encoding %q: %s is %q, want %q", c.accept, h, v, want)
			}
		}
		s.get("/modules/"+sha+".wasm", "Accept-Encoding", c.accept, "If-None-Match", etag).want(t, http.StatusNotModified)
	}
	if quality == modenc.BuildQuality {
		br := s.get("/modules/"+sha+".wasm", "Accept-Encoding", "br").Body
		if want, _ := modenc.Encode(wasm, modenc.Brotli, modenc.BuildQuality); len(br) != len(want) {
			t.Errorf("built-in sent in %d bytes of brotli, the build's best quality gives %d", len(br), len(want))
		}
	}
}

// TestBuiltinModulesServedCompressed: a built-in is served in the forms the
// build made (brotli at its best quality); a compressed file that does not
// decode to its module is dropped and the module served as it is.
func TestBuiltinModulesServedCompressed(t *testing.T) {
	wasm, err := jobs.Builtin("noop")
	if errors.Is(err, jobs.ErrNotBuilt) {
		t.Skip("the built-in jobs are not built: make jobs")
	}
	if _, ok := jobs.Encodings()["noop"][modenc.Brotli]; !ok {
		t.Fatal("noop is built but the build did not compress it: make jobs")
	}
	dir := t.TempDir()
	s := startServer(t, server.Config{DataDir: dir})
	sum := sha256.Sum256(wasm)
	sha := hex.EncodeToString(sum[:])
	checkModuleServed(t, s, sha, wasm, modenc.BuildQuality)

	s.Close()
	br := filepath.Join(dir, "modules", sha+".wasm.br")
	if err := os.WriteFile(br, []byte("not brotli"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, server.Config{DataDir: dir, Builtins: map[string][]byte{"noop": wasm}})
	got := s.get("/modules/"+sha+".wasm", "Accept-Encoding", "br").want(t, http.StatusOK)
	if got.Header.Get("Content-Encoding") != "" || !bytes.Equal(got.Body, wasm) {
		t.Errorf("a corrupt brotli file was served (Content-Encoding %q)", got.Header.Get("Content-Encoding"))
	}
	if _, err := os.Stat(br); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the corrupt file is still there: %v", err)
	}
}

// TestSubmitJobWithModule registers the module sent as a file part.
func TestSubmitJobWithModule(t *testing.T) {
	s := startServer(t, server.Config{})
	s.startWorker()
	wasm := wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/wordcount")
	sum := sha256.Sum256(wasm)
	j := s.submit(formPart{name: "module", file: "wc.wasm", value: string(wasm)}, inputFile("in.txt", wordcountInput))
	if j.ModuleSHA != hex.EncodeToString(sum[:]) {
		t.Errorf("module_sha256: want %x, got %s", sum, j.ModuleSHA)
	}
	s.waitJob(j.ID)
	s.postJob(formPart{name: "module", file: "bad.wasm", value: "not wasm"}, inputFile("in.txt", "x")).
		wantError(t, http.StatusBadRequest, "invalid argument")
}

// TestCancelStreamingJob: a streaming job runs until cancelled, and has no
// output to read meanwhile.
func TestCancelStreamingJob(t *testing.T) {
	s := startServer(t, server.Config{})
	j := s.submit(field("module", "wordcount"), field("input_queue", "lines"), field("output_queue", "counts"), field("stream", "true"))
	s.get(j.URLs.Output).wantError(t, http.StatusConflict)
	r := s.do(http.MethodDelete, j.URLs.Self, nil).want(t, http.StatusOK)
	if c := decode[jobReply](t, r); c.ID != j.ID || c.State != engine.StateCancelled {
		t.Errorf("cancel: want %s cancelled, got %+v", j.ID, c.Status)
	}
	// The second DELETE deletes the cancelled job.
	s.do(http.MethodDelete, j.URLs.Self, nil).want(t, http.StatusOK)
	s.get(j.URLs.Self).wantError(t, http.StatusNotFound, "job not found")
}
