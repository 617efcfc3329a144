package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
)

// loadEnv makes the test binary a load generator in a process of its own
// (see BenchmarkHTTPPushHalfPeakProcess): "OP,URL,N" measures the peak of
// OP (push: POST /q/bench; get: a hard GET /q/bench, which fails on an
// empty queue) for a second, then runs N of them paced at half of it and
// prints the result as JSON.
const loadEnv = "TABREDUCE_BENCH_LOAD"

func init() {
	if spec := os.Getenv(loadEnv); spec != "" {
		os.Exit(runLoad(spec))
	}
}

type loadResult struct {
	Peak, Paced float64
	P50, P99    float64 // ms
}

// BenchmarkHTTPPushHalfPeakProcess is BenchmarkHTTPPushHalfPeak with the
// load generator in a separate process, so that its own scheduling and
// garbage collection do not count as the server's latency (the two still
// share the machine's cores).
func BenchmarkHTTPPushHalfPeakProcess(b *testing.B) {
	res := halfPeakProcess(b, benchServer(b), "push")
	b.ReportMetric(res.Peak, "peak-push/s")
	b.ReportMetric(res.Paced, "paced-push/s")
	b.ReportMetric(res.P50, "p50-ms")
	b.ReportMetric(res.P99, "p99-ms")
}

// BenchmarkHTTPHardGetHalfPeakProcess is the same for RestMQ's hard get, on
// a queue filled beforehand with more messages than the peak's second and
// the paced run can take (the load process fails if a get finds it empty):
// 120,000 more, or TABREDUCE_BENCH_BACKLOG more, to measure the tail at a
// larger backlog.
func BenchmarkHTTPHardGetHalfPeakProcess(b *testing.B) {
	srv := benchServer(b)
	n := max(b.N, 20000)
	extra := 120_000
	if s := os.Getenv("TABREDUCE_BENCH_BACKLOG"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			b.Fatalf("TABREDUCE_BENCH_BACKLOG=%q: want a count of messages", s)
		}
		extra = v
	}
	fill(b, srv, "bench", n+extra)
	res := halfPeakProcess(b, srv, "get")
	b.ReportMetric(res.Peak, "peak-get/s")
	b.ReportMetric(res.Paced, "paced-get/s")
	b.ReportMetric(res.P50, "p50-ms")
	b.ReportMetric(res.P99, "p99-ms")
}

// halfPeakProcess runs the load generator for op in a process of its own
// against srv and returns what it measured.
func halfPeakProcess(b *testing.B, srv *server.Server, op string) loadResult {
	var res loadResult
	b.ResetTimer()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d", loadEnv, op, srv.URL(), max(b.N, 20000)))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("load process: %v", err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("load process said %q: %v", out, err)
	}
	return res
}

func runLoad(spec string) int {
	op, rest, _ := strings.Cut(spec, ",")
	url, nstr, _ := strings.Cut(rest, ",")
	n, _ := strconv.Atoi(nstr)
	const clients = 16
	client := benchClient(clients)
	do := func() error {
		_, err := post(client, url+"/q/bench", "application/octet-stream", payload)
		return err
	}
	if op == "get" {
		do = func() error { return hardGet(client, url+"/q/bench") }
	} else if op != "push" {
		fmt.Fprintf(os.Stderr, "load: unknown op %q\n", op)
		return 2
	}
	peak := measurePeak(clients, time.Second, do)
	interval := time.Duration(float64(time.Second) / (peak / 2))
	start := time.Now()
	elapsed, lat, err := spread(clients, n, func(i int) (time.Time, error) {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		return due, do()
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p50, p99 := percentiles(lat)
	b, _ := json.Marshal(loadResult{Peak: peak, Paced: float64(n) / elapsed.Seconds(), P50: p50, P99: p99})
	fmt.Println(string(b))
	return 0
}
