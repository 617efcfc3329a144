package static_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// BenchmarkBrowserWordcountLanguages: the same wordcount work in one tab
// with one Web Worker, alternated within each iteration: the Go reactor
// (the baseline), the Go command and the C command (each with the sum
// reactor as reducer) and the AssemblyScript reactor. For each: the Web
// Worker's compute rate over 8 MB of Zipf text in 1 MiB chunks (the bytes
// its tasks read over the time it measured them, map and reduce), the map
// phase's rate through the server, and the cost of one tiny task (200
// map tasks of 1 KiB: the map phase's wall time, and the Web Worker's own
// time, per task). Every variant's output must equal the Go reactor's.
func BenchmarkBrowserWordcountLanguages(b *testing.B) {
	bctx := browser(b)
	srv := startServer(b)
	sum := uploadBytes(b, srv, wasmtest.Module(b, "github.com/tabreduce/tabreduce/jobs/sum"))
	variants := []struct {
		name   string
		fields map[string]string
	}{
		{"go-reactor", map[string]string{"module": uploadModule(b, srv, wordcountPkg)}},
		{"go-command", map[string]string{"mapper": uploadBytes(b, srv, wasmtest.Command(b, "github.com/tabreduce/tabreduce/jobs/wordcount-cmd")), "reducer": sum}},
		{"c-command", map[string]string{"mapper": uploadBytes(b, srv, wasmtest.C(b, "../jobs/wordcount-c/main.c")), "reducer": sum}},
		{"as-reactor", map[string]string{"module": uploadBytes(b, srv, wasmtest.AssemblyScript(b, "../jobs/wordcount-as"))}},
	}
	text := wasmtest.ZipfText(8 << 20) // ASCII words: every variant counts the same
	tiny := []byte(strings.Repeat(strings.Repeat("word ", 204)+"abc\n", 200))
	worker, _ := tab(b, bctx, srv.URL()+"/worker?slots=1")
	waitUntil(b, 20*time.Second, "the tab connects", func() bool { return browserWorkers(srv) == 1 })
	// run submits one job with the variant's modules and returns the map
	// phase's wall time, the Web Worker's time and bytes for the job, and
	// the output.
	run := func(fields map[string]string, input []byte, chunk string) (wall, cpu time.Duration, bytesIn float64, out []byte) {
		f := map[string]string{"chunk_size": chunk, "reducers": "2", "verify": "none"}
		for k, v := range fields {
			f[k] = v
		}
		cpu0 := evalJS[float64](b, worker, `window.tabreduce.last.cpuMs`)
		bytes0 := evalJS[float64](b, worker, `window.tabreduce.last.bytes`)
		id := submitMultipart(b, srv, f, input)
		st := waitJob(b, srv, id, 5*time.Minute)
		if st.State != "done" {
			b.Fatalf("job %s: %s %s", id, st.State, st.Error)
		}
		// The tab's counters reach the page four times a second.
		time.Sleep(300 * time.Millisecond)
		cpu = time.Duration((evalJS[float64](b, worker, `window.tabreduce.last.cpuMs`) - cpu0) * float64(time.Millisecond))
		bytesIn = evalJS[float64](b, worker, `window.tabreduce.last.bytes`) - bytes0
		return st.MapDone.Sub(*st.Started), cpu, bytesIn, fetchOutput(b, srv, id)
	}
	for _, v := range variants { // warm: each module fetched, compiled and run once
		run(v.fields, tiny, "1024")
	}
	n := len(variants)
	compute, mapRate, wallTask, cpuTask := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for b.Loop() {
		var want []byte
		for i, v := range variants {
			wall, cpu, in, out := run(v.fields, text, "1048576")
			if want == nil {
				want = out
			} else if !bytes.Equal(out, want) {
				b.Fatalf("%s: output differs from %s's: %s", v.name, variants[0].name, firstDiff(out, want))
			}
			compute[i] += in / 1e6 / cpu.Seconds()
			mapRate[i] += float64(len(text)) / 1e6 / wall.Seconds()
			wall, cpu, _, _ = run(v.fields, tiny, "1024")
			wallTask[i] += float64(wall.Microseconds()) / 200
			cpuTask[i] += float64(cpu.Microseconds()) / 200
		}
	}
	k := float64(b.N)
	for i, v := range variants {
		b.ReportMetric(compute[i]/k, v.name+"-worker-MB/s")
		b.ReportMetric(mapRate[i]/k, v.name+"-mapphase-MB/s")
		b.ReportMetric(wallTask[i]/k, v.name+"-us/task")
		b.ReportMetric(cpuTask[i]/k, v.name+"-worker-us/task")
		if i > 0 {
			b.ReportMetric(compute[i]/compute[0], v.name+"/go-reactor")
		}
	}
	b.ReportMetric(0, "ns/op")
}
