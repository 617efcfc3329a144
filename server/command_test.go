package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// upload registers a module and returns its sha256.
func (s *testServer) upload(wasm []byte) string {
	s.t.Helper()
	r := s.do(http.MethodPost, "/api/v1/modules", bytes.NewReader(wasm), "Content-Type", "application/wasm").want(s.t, http.StatusCreated)
	return decode[map[string]any](s.t, r)["sha256"].(string)
}

// TestCommandJob runs Hadoop-Streaming-style jobs through the engine on a
// native worker: a WASI command as the mapper (its arguments from params)
// and the sum reactor, or another command, as the reducer; a command
// that exits non-zero fails its job with its stderr.
func TestCommandJob(t *testing.T) {
	s := startServer(t, server.Config{})
	s.startWorker()
	mapper := s.upload(wasmtest.Command(t, "github.com/tabreduce/tabreduce/jobs/wordcount-cmd"))
	sum := s.upload(wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/sum"))
	envcmd := s.upload(wasmtest.Command(t, "github.com/tabreduce/tabreduce/wasm/runner/testdata/envcmd"))

	line := "the cat and the hat\n"
	in := strings.Repeat(line, 5000)
	j := s.submit(field("mapper", mapper), field("reducer", sum), field("chunk_size", "4096"), field("reducers", "2"), inputFile("in.txt", in))
	done := s.waitJob(j.ID)
	if done.ModuleSHA != mapper || done.ReducerSHA != sum {
		t.Errorf("status names mapper %s and reducer %s, want %s and %s", done.ModuleSHA, done.ReducerSHA, mapper, sum)
	}
	got := string(s.get(j.URLs.Output+"?format=tsv").want(t, http.StatusOK).Body)
	if want := "and\t5000\ncat\t5000\nhat\t5000\nthe\t10000\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if done.Counters["wordcount.words"] == 0 {
		t.Errorf("counters %v: want the mapper's wordcount.words", done.Counters)
	}

	// A command reducer sees its partition as sorted key<TAB>value lines.
	j = s.submit(field("mapper", sum), field("reducer", envcmd), field("reducers", "1"),
		field("params", `{"args": ["--flag"], "env": ["MODE=test"]}`), inputFile("in.txt", "b\t2\na\t1\n"))
	s.waitJob(j.ID)
	got = string(s.get(j.URLs.Output+"?format=tsv").want(t, http.StatusOK).Body)
	for _, want := range []string{"argv\treduce --flag\n", "env\tMODE=test\n", "env\tTABREDUCE_PHASE=reduce\n", "stdin\t\"a\\\\t1\\\\nb\\\\t2\\\\n\"\n"} { // the TSV output escapes backslashes
		if !strings.Contains(got, want) {
			t.Errorf("reducer output lacks %q:\n%s", want, got)
		}
	}

	j = s.submit(field("mapper", envcmd), field("reducer", sum), field("max_attempts", "1"), field("params", `{"args": ["fail"]}`), inputFile("in.txt", "x\n"))
	st := s.waitFinished(j.ID)
	if st.State != "failed" || !strings.Contains(st.Error, "exit code 3") || !strings.Contains(st.Error, "it went wrong") {
		t.Errorf("a failing command: state %s, error %q", st.State, st.Error)
	}
}

// TestCommandJobRefused: bad command submissions are 400s that name the
// problem.
func TestCommandJobRefused(t *testing.T) {
	s := startServer(t, server.Config{})
	mapper := s.upload(wasmtest.Command(t, "github.com/tabreduce/tabreduce/wasm/runner/testdata/envcmd"))
	sum := s.upload(wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/sum"))
	for _, c := range []struct {
		parts []formPart
		want  string
	}{
		{[]formPart{field("mapper", mapper), inputFile("in.txt", "x\n")}, "mapper and reducer"},
		{[]formPart{field("mapper", mapper), field("reducer", sum), field("params", `{"env": ["TABREDUCE_PHASE=x"]}`), inputFile("in.txt", "x\n")}, "TABREDUCE_"},
		{[]formPart{field("mapper", mapper), field("reducer", sum), field("params", `{"args": [1]}`), inputFile("in.txt", "x\n")}, "args"},
		{[]formPart{field("mapper", strings.Repeat("0", 64)), field("reducer", sum), inputFile("in.txt", "x\n")}, "not found"},
	} {
		r := s.postJob(c.parts...)
		if r.Status/100 != 4 || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("%v: %d %s, want a 4xx naming %q", c.parts[:len(c.parts)-1], r.Status, r.Body, c.want)
		}
	}
}

// waitFinished polls a job until it is finished, however it ended.
func (s *testServer) waitFinished(id string) jobReply {
	s.t.Helper()
	for range 400 {
		j := decode[jobReply](s.t, s.get("/api/v1/jobs/"+id).want(s.t, http.StatusOK))
		if j.State.Finished() {
			return j
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("job %s did not finish", id)
	return jobReply{}
}

// TestKmeansCJob: the C mapper kmeans-c (the built-in, by name, where make
// jobs built it) with the built-in kmeans as reducer, on a native worker,
// gives the Go kmeans job's output on the same points, byte for byte.
func TestKmeansCJob(t *testing.T) {
	s := startServer(t, server.Config{})
	s.startWorker()
	mapper := "kmeans-c"
	if _, err := jobs.Builtin(mapper); err != nil {
		mapper = s.upload(wasmtest.C(t, "../jobs/kmeans-c/main.c"))
	}
	var in strings.Builder
	for _, p := range wasmtest.ClusterPoints(20_000) {
		fmt.Fprintf(&in, "%v,%v\n", p[0], p[1])
	}
	goJob := s.submit(field("module", "kmeans"), field("chunk_size", "65536"), field("params", `{"centroids": [[1, 1], [9, 9], [-4, 7]]}`), inputFile("pts.csv", in.String()))
	cJob := s.submit(field("mapper", mapper), field("reducer", "kmeans"), field("chunk_size", "65536"),
		field("params", `{"args": ["1,1", "9,9", "-4,7"]}`), inputFile("pts.csv", in.String()))
	s.waitJob(goJob.ID)
	done := s.waitJob(cJob.ID)
	want := string(s.get(goJob.URLs.Output+"?format=tsv").want(t, http.StatusOK).Body)
	got := string(s.get(cJob.URLs.Output+"?format=tsv").want(t, http.StatusOK).Body)
	if got != want || strings.Count(want, "\n") != 3 {
		t.Errorf("kmeans-c + kmeans output:\n%s\nthe Go kmeans job's:\n%s", got, want)
	}
	if done.Counters["kmeans.points"] != 20_000 {
		t.Errorf("counters %v: want kmeans.points 20000", done.Counters)
	}
}
