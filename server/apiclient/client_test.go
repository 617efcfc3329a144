package apiclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/servertest"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const token = "sesame"

// waitFor bounds a job from submission to its end.
const waitFor = 60 * time.Second

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return c
}

// wantError fails unless err is the server's *Error with status whose
// text starts with prefix.
func wantError(t *testing.T, err error, status int, prefix string) {
	t.Helper()
	var e *apiclient.Error
	if !errors.As(err, &e) || e.StatusCode != status || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("want a %d *apiclient.Error starting %q, got %T %v", status, prefix, err, err)
	}
}

func TestRefusals(t *testing.T) {
	srv := servertest.Start(t, server.Config{Token: token})
	c := apiclient.New(srv.URL()+"/", token)
	if h, err := c.Health(ctx(t)); err != nil || h.Status != "ok" {
		t.Fatalf("health: %+v, %v", h, err)
	}
	if _, err := c.Stats(ctx(t)); err != nil {
		t.Fatalf("stats: %v", err)
	}
	_, err := apiclient.New(srv.URL(), "wrong").Jobs(ctx(t))
	wantError(t, err, http.StatusUnauthorized, "401 Unauthorized: this route needs Authorization: Bearer <token>")
	_, err = c.Job(ctx(t), "nosuchjob")
	wantError(t, err, http.StatusNotFound, "404 Not Found: job not found")
	_, err = c.SubmitJob(ctx(t), engine.Spec{Module: "wordcount", Reducers: 5000}, apiclient.ReaderInput("in", strings.NewReader("a\n")))
	wantError(t, err, http.StatusBadRequest, "400 Bad Request: reducers must be between 1 and 1024")
	_, err = c.SubmitJob(ctx(t), engine.Spec{Module: "wordcount"}, apiclient.FileInput(filepath.Join(t.TempDir(), "missing.txt")))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "input missing.txt") {
		t.Fatalf("missing input file: want its open error, got %v", err)
	}
	_, err = c.UploadModule(ctx(t), strings.NewReader("not wasm"))
	wantError(t, err, http.StatusBadRequest, "400 Bad Request: ")
}

// TestJobLifecycle runs a job on a real worker: upload, submit, wait,
// output, list, cancel.
func TestJobLifecycle(t *testing.T) {
	srv := servertest.Start(t, server.Config{Token: token})
	servertest.StartWorker(t, srv.URL(), token)
	c := apiclient.New(srv.URL(), token)

	wasm := wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/wordcount")
	m, err := c.UploadModule(ctx(t), bytes.NewReader(wasm))
	if err != nil || len(m.SHA256) != 64 || m.Size != int64(len(wasm)) {
		t.Fatalf("upload: %+v, %v", m, err)
	}
	path := filepath.Join(t.TempDir(), "one.txt")
	if err := os.WriteFile(path, []byte("b a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	job, err := c.SubmitJob(ctx(t), engine.Spec{Module: m.SHA256, Reducers: 2},
		apiclient.FileInput(path), apiclient.ReaderInput("two.txt", strings.NewReader("c, A b\tB\n")))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if job.ModuleSHA != m.SHA256 || job.URLs.Output != "/api/v1/jobs/"+job.ID+"/output" {
		t.Errorf("submitted: %+v", job)
	}
	var polls int
	job, err = c.WaitJob(ctx(t), job.ID, 20*time.Millisecond, func(apiclient.Job) { polls++ })
	if err != nil || job.State != engine.StateDone || polls == 0 {
		t.Fatalf("wait: state %s after %d polls, %v (%s)", job.State, polls, err, job.Error)
	}
	if got := readOutput(t, c, job.ID, "tsv"); got != "a\t2\nb\t3\nc\t1\n" {
		t.Errorf("tsv output: %q", got)
	}
	if got := readOutput(t, c, job.ID, ""); !strings.HasPrefix(got, `{"key":"a","value":"2"}`+"\n") {
		t.Errorf("ndjson output: %q", got)
	}
	jobs, err := c.Jobs(ctx(t))
	if err != nil || !slices.ContainsFunc(jobs, func(j apiclient.Job) bool { return j.ID == job.ID }) {
		t.Errorf("jobs: want %s among %+v, %v", job.ID, jobs, err)
	}
	if ms, err := c.Modules(ctx(t)); err != nil || !slices.ContainsFunc(ms, func(mi engine.ModuleInfo) bool { return mi.SHA256 == m.SHA256 }) {
		t.Errorf("modules: want %s among %+v, %v", m.SHA256, ms, err)
	}
	if ws, err := c.Workers(ctx(t)); err != nil || len(ws) != 1 {
		t.Errorf("workers: want the one, got %+v, %v", ws, err)
	}
	// A finished job is deleted whole; a DELETE meant to cancel it says so.
	if _, err := c.Cancel(ctx(t), job.ID); !errors.Is(err, apiclient.ErrDeleted) {
		t.Errorf("cancel a done job: %v, want ErrDeleted", err)
	}
	_, err = c.Job(ctx(t), job.ID)
	wantError(t, err, http.StatusNotFound, "404 Not Found: job not found")
	if !errors.Is(err, api.ErrNotFound) {
		t.Errorf("a deleted job: %v does not match api.ErrNotFound", err)
	}
	if err := c.Delete(ctx(t), job.ID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("delete a deleted job: %v, want not found", err)
	}
}

// TestSubmitStreams sends an input far larger than the server's MaxBody,
// generated as it is sent.
func TestSubmitStreams(t *testing.T) {
	srv := servertest.Start(t, server.Config{MaxBody: 64 << 10})
	servertest.StartWorker(t, srv.URL(), "")
	c := apiclient.New(srv.URL(), "")
	const lines = 1 << 18 // 1 MiB of "x y\n"
	input := io.LimitReader(&repeater{s: "x y\n"}, 4*lines)
	job, err := c.SubmitJob(ctx(t), engine.Spec{Module: "wordcount", ChunkSize: 256 << 10}, apiclient.ReaderInput("gen", input))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if job, err = c.WaitJob(ctx(t), job.ID, 50*time.Millisecond, nil); err != nil || job.State != engine.StateDone {
		t.Fatalf("wait: %s, %v (%s)", job.State, err, job.Error)
	}
	if got, want := readOutput(t, c, job.ID, "tsv"), "x\t262144\ny\t262144\n"; got != want {
		t.Errorf("output: want %q, got %q", want, got)
	}
}

// repeater reads s over and over.
type repeater struct {
	s   string
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.s[r.off]
		r.off = (r.off + 1) % len(r.s)
	}
	return len(p), nil
}

func readOutput(t *testing.T, c *apiclient.Client, id, format string) string {
	t.Helper()
	rc, err := c.Output(ctx(t), id, format)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	return string(b)
}
