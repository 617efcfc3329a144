package server_test

import (
	"bytes"
	"net/http"
	"slices"
	"testing"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// modules is GET /api/v1/modules.
func (s *testServer) modules() []engine.ModuleInfo {
	s.t.Helper()
	return decode[struct {
		Modules []engine.ModuleInfo `json:"modules"`
	}](s.t, s.get("/api/v1/modules").want(s.t, http.StatusOK)).Modules
}

func moduleNamed(ms []engine.ModuleInfo, sha string) string {
	i := slices.IndexFunc(ms, func(m engine.ModuleInfo) bool { return m.SHA256 == sha })
	if i < 0 {
		return "(not listed)"
	}
	return ms[i].Name
}

// An uploaded module keeps the name it came with (its file's), cleaned:
// the module list and its jobs show it, after a restart too; an upload
// without a name keeps the old one; a built-in keeps its own.
func TestModuleNames(t *testing.T) {
	s := startServer(t, server.Config{})
	wasm := wasmtest.Module(t, "./testdata/namedjob")
	up := func(query string, b []byte) string {
		r := s.do(http.MethodPost, "/api/v1/modules"+query, bytes.NewReader(b), "Content-Type", "application/wasm").want(t, http.StatusCreated)
		return decode[map[string]any](t, r)["sha256"].(string)
	}
	sha := up("?name=..%2Fsome%2Fdir%2Fline%0Acount.wasm", wasm)
	if got := moduleNamed(s.modules(), sha); got != "linecount.wasm" {
		t.Errorf("module listed as %q, want linecount.wasm (the base name, no control characters)", got)
	}
	if up("", wasm) != sha || moduleNamed(s.modules(), sha) != "linecount.wasm" {
		t.Errorf("an upload without a name: listed as %q, want the name kept", moduleNamed(s.modules(), sha))
	}
	j := s.submit(field("module", sha), inputFile("in.txt", "a\nb\n"))
	if j.ModuleName != "linecount.wasm" {
		t.Errorf("job's module_name %q, want linecount.wasm", j.ModuleName)
	}
	// A module sent with the job, as a file part, is named after the file.
	part := formPart{name: "module", file: "my job.wasm", value: string(wasm)}
	mine := s.submit(part, inputFile("in.txt", "a\n"))
	if mine.ModuleName != "my job.wasm" {
		t.Errorf("job's module_name %q, want the file part's name", mine.ModuleName)
	}
	wc := s.submit(field("module", "wordcount"), inputFile("in.txt", "a\n"))
	if up("?name=impostor.wasm", wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/wordcount")) == wc.ModuleSHA &&
		moduleNamed(s.modules(), wc.ModuleSHA) != "wordcount" {
		t.Errorf("the built-in wordcount is listed as %q after an upload of its bytes under another name", moduleNamed(s.modules(), wc.ModuleSHA))
	}

	s = s.restart()
	got := decode[jobReply](t, s.get("/api/v1/jobs/"+mine.ID).want(t, http.StatusOK))
	if got.ModuleName != "my job.wasm" {
		t.Errorf("after a restart the job's module_name is %q", got.ModuleName)
	}
}
