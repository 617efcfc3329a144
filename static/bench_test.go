package static_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// The browser benchmarks run once each (-benchtime 1x is enough; make bench
// runs them with the rest) and report what docs/BENCHMARKS.md ("Browser
// worker") records.

// nativeWordcount is what a Go programmer writes without us: the job's
// tokenizer and a map[string]int.
func nativeWordcount(text []byte) map[string]int {
	counts := map[string]int{}
	w := make([]byte, 0, 64)
	flush := func() {
		if len(w) > 0 {
			counts[string(w)]++
			w = w[:0]
		}
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				w = append(w, c)
			case 'A' <= c && c <= 'Z':
				w = append(w, c+'a'-'A')
			default:
				flush()
			}
			continue
		}
		r, n := utf8.DecodeRune(text[i:])
		i += n
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			w = utf8.AppendRune(w, unicode.ToLower(r))
		} else {
			flush()
		}
	}
	flush()
	return counts
}

// BenchmarkBrowserWordcount: wordcount on 32 MB of Zipf text in one tab
// with one Web Worker, against nativeWordcount on the same bytes in the
// same run. Reports the Web Worker's compute rate (bytes over the task time
// it measured: map, combine, partition), the map phase's wall-clock rate
// through the server, and both as a share of native.
func BenchmarkBrowserWordcount(b *testing.B) {
	bctx := browser(b)
	srv := startServer(b)
	sha := uploadModule(b, srv, wordcountPkg)
	text := wasmtest.ZipfText(32 << 20)
	for b.Loop() {
		worker, closeTab := tab(b, bctx, srv.URL()+"/worker?slots=1")
		waitUntil(b, 20*time.Second, "the tab connects", func() bool { return browserWorkers(srv) == 1 })
		id := submitMultipart(b, srv, map[string]string{"module": sha, "reducers": "4"}, text)
		st := waitJob(b, srv, id, 5*time.Minute)
		if st.State != "done" {
			b.Fatalf("job %s: %s %s", id, st.State, st.Error)
		}
		cpuMs := evalJS[float64](b, worker, `window.tabreduce.last.cpuMs`)
		mapBytes := evalJS[float64](b, worker, `window.tabreduce.last.bytes`)
		closeTab()
		waitUntil(b, 10*time.Second, "the tab leaves", func() bool { return browserWorkers(srv) == 0 })

		start := time.Now()
		nativeWordcount(text)
		native := float64(len(text)) / 1e6 / time.Since(start).Seconds()
		compute := mapBytes / 1e6 / (cpuMs / 1000)
		wall := float64(st.BytesIn) / 1e6 / st.MapDone.Sub(*st.Started).Seconds()
		b.ReportMetric(native, "native-MB/s")
		b.ReportMetric(compute, "worker-MB/s")
		b.ReportMetric(wall, "mapphase-MB/s")
		b.ReportMetric(100*compute/native, "worker-%native")
		b.ReportMetric(100*wall/native, "mapphase-%native")
		// The plainest program a user would write: strings.FieldsFunc,
		// ToLower and a map.
		start = time.Now()
		plainWordcount(string(text))
		plain := float64(len(text)) / 1e6 / time.Since(start).Seconds()
		b.ReportMetric(plain, "plain-MB/s")
		b.ReportMetric(100*compute/plain, "worker-%plain")
	}
}

// plainWordcount is the plainest wordcount: split on anything but letters
// and digits, lower-case, count in a map.
func plainWordcount(text string) map[string]int {
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		counts[strings.ToLower(w)]++
	}
	return counts
}

// BenchmarkBrowserNoop: tasks/s of no-op map tasks (1 KiB chunks) with four
// tabs of one Web Worker each, and, for the socket decision, one tab of
// four Web Workers sharing its one WebSocket against one WebSocket per Web
// Worker.
func BenchmarkBrowserNoop(b *testing.B) {
	cases := []struct {
		name  string
		tabs  int
		query string
		conns int
	}{
		{"4tabs", 4, "slots=1", 4},
		{"1tab-4slots-shared-socket", 1, "slots=4", 1},
		{"1tab-4slots-socket-per-slot", 1, "slots=4&sockets=slot", 4},
	}
	bctx := browser(b)
	srv := startServer(b)
	sha := uploadModule(b, srv, "github.com/tabreduce/tabreduce/jobs/noop")
	input := []byte(strings.Repeat(strings.Repeat("x", 1023)+"\n", 4000))
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				var closers []func()
				for i := range c.tabs {
					_, cl := tab(b, bctx, fmt.Sprintf("%s/worker?%s&name=b%d", srv.URL(), c.query, i))
					closers = append(closers, cl)
				}
				waitUntil(b, 20*time.Second, "the tabs connect", func() bool { return browserWorkers(srv) == c.conns })
				id := submitMultipart(b, srv, map[string]string{"module": sha, "chunk_size": "1024", "reducers": "1"}, input)
				st := waitJob(b, srv, id, 5*time.Minute)
				if st.State != "done" {
					b.Fatalf("job %s: %s %s", id, st.State, st.Error)
				}
				b.ReportMetric(4000/st.MapDone.Sub(*st.Started).Seconds(), "tasks/s")
				for _, cl := range closers {
					cl()
				}
				waitUntil(b, 10*time.Second, "the tabs leave", func() bool { return browserWorkers(srv) == 0 })
			}
		})
	}
}
