package jobs_test

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// cInput is the test corpus: Zipf text and the edges of the word rule
// (digits, capitals, punctuation, non-ASCII bytes, which split words).
func cInput() []byte {
	return append(wasmtest.ZipfText(1<<20), "Hello, WORLD! x86-64 über naïve 42\n\ttab\r\nlast"...)
}

// coreutils counts words as the job defines them, with tr, sort and uniq
// in the C locale: the oracle.
func coreutils(t testing.TB, in []byte) []abi.Pair {
	t.Helper()
	cmd := exec.Command("sh", "-c", `tr -cs 'A-Za-z0-9' '\n' | tr A-Z a-z | grep -v '^$' | sort | uniq -c`)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("coreutils: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		n, w, _ := strings.Cut(strings.TrimSpace(line), " ")
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("uniq -c line %q", line)
		}
		m[w] = n
	}
	return wasmtest.Pairs(m)
}

// TestWordcountC: the C module as mapper and sum as reducer, under wazero,
// equal the coreutils oracle, with 64 KiB chunks so that many map tasks'
// counts are summed.
func TestWordcountC(t *testing.T) {
	in := cInput()
	want := coreutils(t, in)
	x := sumJob(t, "wordcount-c", wasmtest.C(t, "wordcount-c/main.c"))
	got, err := driver.Run(t.Context(), x, in, driver.Options{ChunkSize: 64 << 10, Reducers: 3, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	if d := wasmtest.Diff(driver.Output{Pairs: got.Pairs}, driver.Output{Pairs: want}); d != "" {
		t.Fatalf("C wordcount vs coreutils: %s", d)
	}
	if words := got.Counters.Get("wordcount.words"); words < int64(len(want)) {
		t.Errorf("counter wordcount.words = %d, want at least the %d distinct words", words, len(want))
	}
}

// TestWordcountAS: the AssemblyScript reactor, written against wasm/ABI.md
// alone, under wazero (as an upload is run: termination checks on) equals
// the coreutils oracle, with 64 KiB chunks so that many map tasks' counts
// are summed by its reducer; its "words" counter counts every word.
func TestWordcountAS(t *testing.T) {
	in := cInput()
	want := coreutils(t, in)
	r := wasmtest.Runner(t)
	sha, err := r.Compile(t.Context(), wasmtest.AssemblyScript(t, "wordcount-as"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := driver.Run(t.Context(), r.Executor("wordcount-as", sha, nil), in, driver.Options{ChunkSize: 64 << 10, Reducers: 3, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	if d := wasmtest.Diff(driver.Output{Pairs: got.Pairs}, driver.Output{Pairs: want}); d != "" {
		t.Fatalf("AssemblyScript wordcount vs coreutils: %s", d)
	}
	var total int64
	for _, p := range want {
		n, _ := strconv.ParseInt(string(p.Value), 10, 64)
		total += n
	}
	if words := got.Counters.Get("words"); words != total {
		t.Errorf("counter words = %d, want %d (the oracle's counts added up)", words, total)
	}
}

// TestWordcountCommand: wordcount written as a Go WASI command, with sum as
// its reducer, gives what the reactor wordcount gives.
func TestWordcountCommand(t *testing.T) {
	in := append(wasmtest.ZipfText(1<<20), " Ünïcödé WÖRDS, déjà vu\n"...)
	opts := driver.Options{ChunkSize: 128 << 10, Reducers: 3, Parallelism: 2}
	want := wasmtest.RunModule(t, "github.com/tabreduce/tabreduce/jobs/wordcount", in, nil, opts)
	x := sumJob(t, "wordcount-cmd", wasmtest.Command(t, "github.com/tabreduce/tabreduce/jobs/wordcount-cmd"))
	got, err := driver.Run(t.Context(), x, in, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := wasmtest.Diff(driver.Output{Pairs: got.Pairs}, driver.Output{Pairs: want.Pairs}); d != "" {
		t.Fatalf("command wordcount vs reactor wordcount: %s", d)
	}
}

// sumJob compiles mapper and the sum reducer in the shared runner and
// returns the job's executor.
func sumJob(t *testing.T, name string, mapper []byte) driver.Executor {
	t.Helper()
	r := wasmtest.Runner(t)
	m, err := r.Compile(t.Context(), mapper)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Compile(t.Context(), wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/sum"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := r.JobExecutor(t.Context(), name, m, sum, nil)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
