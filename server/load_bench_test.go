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
)

// loadEnv makes the test binary a load generator in a process of its own
// (see BenchmarkHTTPPushHalfPeakProcess): "URL,N" measures the push peak
// for a second, then pushes N messages paced at half of it and prints the
// result as JSON.
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
	srv := benchServer(b)
	var res loadResult
	b.ResetTimer()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", loadEnv, srv.URL(), max(b.N, 20000)))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("load process: %v", err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("load process said %q: %v", out, err)
	}
	b.ReportMetric(res.Peak, "peak-push/s")
	b.ReportMetric(res.Paced, "paced-push/s")
	b.ReportMetric(res.P50, "p50-ms")
	b.ReportMetric(res.P99, "p99-ms")
}

func runLoad(spec string) int {
	url, nstr, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(nstr)
	const clients = 16
	client := benchClient(clients)
	push := func() error {
		_, err := post(client, url+"/q/bench", "application/octet-stream", payload)
		return err
	}
	peak := measurePeak(clients, time.Second, push)
	interval := time.Duration(float64(time.Second) / (peak / 2))
	start := time.Now()
	elapsed, lat, err := spread(clients, n, func(i int) (time.Time, error) {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		return due, push()
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
