package static_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/servertest"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// TestCommandDeterminism: jobs not written with the Go SDK give the same
// result hash for every task, and the same output, on a native worker
// (wazero) and in Chromium: command jobs (a WASI command as mapper, the sum
// reactor as reducer) and the AssemblyScript reactor. The C and
// AssemblyScript wordcounts' output is coreutils', the Go command's the
// reactor wordcount's.
func TestCommandDeterminism(t *testing.T) {
	in := append(corpus(24<<10), "Hello, WORLD! x86-64 über naïve 42\n"...)
	cases := []struct {
		name    string
		mapper  func() []byte
		reactor bool   // mapper is a reactor that reduces too; else sum reduces
		counter string // the job's counter of words
		want    func() []byte
	}{
		{"wordcount-c", func() []byte { return wasmtest.C(t, "../jobs/wordcount-c/main.c") }, false, "wordcount.words", func() []byte { return coreutilsWordcount(t, in) }},
		{"wordcount-cmd", func() []byte { return wasmtest.Command(t, "github.com/tabreduce/tabreduce/jobs/wordcount-cmd") }, false, "wordcount.words", nil},
		{"wordcount-as", func() []byte { return wasmtest.AssemblyScript(t, "../jobs/wordcount-as") }, true, "words", func() []byte { return coreutilsWordcount(t, in) }},
	}
	bctx := browser(t)
	nativeSrv := servertest.Start(t, server.Config{WasmCache: wasmtest.CacheDir()})
	native := detSide{kind: "wazero", srv: nativeSrv, tap: startWorkerTap(t, nativeSrv.URL())}
	servertest.StartWorker(t, native.tap.URL, "")
	browserSrv := startServer(t)
	chromium := detSide{kind: "Chromium", srv: browserSrv, tap: startWorkerTap(t, browserSrv.URL())}
	tab(t, bctx, chromium.tap.URL+"/worker?slots=2&name=cmd1")
	waitUntil(t, 20*time.Second, "the native worker and the tab connect", func() bool {
		return workersOfKind(nativeSrv, "native") == 1 && browserWorkers(browserSrv) == 1
	})
	sum := wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/sum")
	reactor := wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/wordcount")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mapper := c.mapper()
			var runs []detRun
			for _, s := range []detSide{native, chromium} {
				spec := map[string]any{"input": string(in), "chunk_size": 4 << 10, "reducers": 3, "verify": "none"}
				if c.reactor {
					spec["module"] = uploadBytes(t, s.srv, mapper)
				} else {
					spec["mapper"], spec["reducer"] = uploadBytes(t, s.srv, mapper), uploadBytes(t, s.srv, sum)
				}
				run, ok := s.finish(t, submitJSON(t, s.srv, spec))
				if !ok {
					return
				}
				runs = append(runs, run)
			}
			a, b := runs[0], runs[1]
			if a.mapTasks < 3 {
				t.Errorf("%d map tasks, want at least 3: make the input larger", a.mapTasks)
			}
			if d := diffTaskHashes(a, b); d != "" {
				t.Errorf("per-task result hashes, wazero vs Chromium:\n%s", d)
			}
			if !bytes.Equal(a.output, b.output) {
				t.Errorf("output, Chromium vs wazero: %s", firstDiff(b.output, a.output))
			}
			if a.counters[c.counter] == 0 || !equalCounters(a.counters, b.counters) {
				t.Errorf("counters: wazero %v, Chromium %v; want equal, with %s", a.counters, b.counters, c.counter)
			}
			var want []byte
			if c.want != nil {
				want = c.want()
			} else {
				id := submitJSON(t, nativeSrv, map[string]any{"module": uploadBytes(t, nativeSrv, reactor), "input": string(in), "reducers": 2})
				if st := waitJob(t, nativeSrv, id, time.Minute); st.State != "done" {
					t.Fatalf("reactor wordcount: %s %s", st.State, st.Error)
				}
				want = fetchOutput(t, nativeSrv, id)
			}
			if !bytes.Equal(a.output, want) {
				t.Errorf("output vs the oracle: %s", firstDiff(a.output, want))
			}
			t.Logf("%d map tasks, %d distinct task results, output %d bytes", a.mapTasks, len(a.tasks), len(a.output))
		})
	}
}

// uploadBytes registers a module and returns its sha256.
func uploadBytes(t testing.TB, srv *server.Server, wasm []byte) string {
	t.Helper()
	resp, err := http.Post(srv.URL()+"/api/v1/modules", "application/wasm", bytes.NewReader(wasm))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ SHA256 string }
	decodeJSON(t, resp, http.StatusCreated, &ref)
	sum := sha256.Sum256(wasm)
	if ref.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload answered sha256 %s", ref.SHA256)
	}
	return ref.SHA256
}

// coreutilsWordcount is the C wordcount's oracle as TSV: tr, sort and uniq
// in the C locale.
func coreutilsWordcount(t testing.TB, in []byte) []byte {
	t.Helper()
	cmd := exec.Command("sh", "-c", `tr -cs 'A-Za-z0-9' '\n' | tr A-Z a-z | grep -v '^$' | sort | uniq -c`)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("coreutils: %v", err)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		n, w, _ := strings.Cut(strings.TrimSpace(line), " ")
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("uniq -c line %q", line)
		}
		lines = append(lines, w+"\t"+n+"\n")
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, ""))
}
