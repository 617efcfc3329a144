package jobs_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// BenchmarkWordcountLanguages: the same wordcount work under wazero, the
// way the built-ins run (trusted runtime), alternated within each
// iteration: the Go reactor (jobs/wordcount, the baseline), the Go command
// (wordcount-cmd with the sum reducer), the C command (wordcount-c + sum)
// and the AssemblyScript reactor (wordcount-as). Two measures each:
// MB/s over 16 MB of ASCII Zipf text in 1 MiB chunks (the whole job, one
// task at a time, best of the iterations), and the cost of one tiny map
// task (a one-line chunk; 200 of them, mean over the iterations), the
// per-task overhead. The Go jobs count Unicode words, the C and
// AssemblyScript ones ASCII words: the text is ASCII, so every variant's
// output must be the same (checked).
func BenchmarkWordcountLanguages(b *testing.B) {
	r, err := runner.New(context.Background(), runner.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	compile := func(wasm []byte) string {
		sha, err := r.CompileTrusted(context.Background(), wasm)
		if err != nil {
			b.Fatal(err)
		}
		return sha
	}
	sum := compile(wasmtest.Module(b, "github.com/tabreduce/tabreduce/jobs/sum"))
	type variant struct {
		name string
		x    driver.Executor
	}
	job := func(name string, mapper []byte, reducer string) variant {
		m := compile(mapper)
		if reducer == "" {
			return variant{name, r.Executor(name, m, nil)}
		}
		x, err := r.JobExecutor(context.Background(), name, m, reducer, nil)
		if err != nil {
			b.Fatal(err)
		}
		return variant{name, x}
	}
	variants := []variant{
		job("go-reactor", wasmtest.Module(b, "github.com/tabreduce/tabreduce/jobs/wordcount"), ""),
		job("go-command", wasmtest.Command(b, "github.com/tabreduce/tabreduce/jobs/wordcount-cmd"), sum),
		job("c-command", wasmtest.C(b, "wordcount-c/main.c"), sum),
		job("as-reactor", wasmtest.AssemblyScript(b, "wordcount-as"), ""),
	}
	text := wasmtest.ZipfText(16 << 20) // ASCII words
	tiny := bytes.Repeat([]byte("word\n"), 200)
	big := driver.Options{ChunkSize: 1 << 20, Reducers: 4, Parallelism: 1}
	small := driver.Options{ChunkSize: 1, Reducers: 1, Parallelism: 1}
	for _, v := range variants { // warm: instances started
		if _, err := driver.Run(context.Background(), v.x, tiny[:10], small); err != nil {
			b.Fatalf("%s: %v", v.name, err)
		}
	}
	best := make([]time.Duration, len(variants))
	perTask := make([]time.Duration, len(variants))
	var want []byte
	for b.Loop() {
		for i, v := range variants {
			t0 := time.Now()
			out, err := driver.Run(context.Background(), v.x, text, big)
			d := time.Since(t0)
			if err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			var tsv bytes.Buffer
			if err := (driver.Output{Pairs: out.Pairs}).WriteTSV(&tsv); err != nil {
				b.Fatal(err)
			}
			if want == nil {
				want = tsv.Bytes()
			} else if !bytes.Equal(tsv.Bytes(), want) {
				b.Fatalf("%s: output differs from %s's", v.name, variants[0].name)
			}
			if best[i] == 0 || d < best[i] {
				best[i] = d
			}
			t0 = time.Now()
			if _, err := driver.Run(context.Background(), v.x, tiny, small); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			perTask[i] += time.Since(t0) / 200
		}
	}
	mb := float64(len(text)) / 1e6
	for i, v := range variants {
		b.ReportMetric(mb/best[i].Seconds(), v.name+"-MB/s")
		b.ReportMetric(float64(perTask[i].Microseconds())/float64(b.N), v.name+"-us/task")
		if i > 0 {
			b.ReportMetric(best[0].Seconds()/best[i].Seconds(), v.name+"/go-reactor")
		}
	}
	b.ReportMetric(0, "ns/op")
}
