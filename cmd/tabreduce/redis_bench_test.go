package main

import (
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkRedisBenchmark runs Debian's redis-benchmark against the binary's
// Redis port (fsync everysec) and against Debian's redis-server (AOF,
// appendfsync everysec) in the same run and reports, per command, the
// median throughput of each and the median of the rounds' ratios, at -P 1
// and -P 16. Each round runs one group of tests (set,get; lpush,rpop;
// mset) on both servers back to back, which goes first alternating, so
// that a burst of load from elsewhere falls on both. Run it with `make
// bench-redis`; TABREDUCE_BENCH_REDIS_N sets the requests per test at -P 1
// (default 50,000; four times as many at -P 16) and
// TABREDUCE_BENCH_REDIS_ROUNDS the rounds (default 5).
func BenchmarkRedisBenchmark(b *testing.B) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.Skip("redis-benchmark is not installed: run `make redis`")
	}
	server, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("redis-server is not installed: run `make redis`")
	}
	ports := [2]string{startBenchBroker(b), startRedisServer(b, server)}
	rounds := envInt("TABREDUCE_BENCH_REDIS_ROUNDS", 5)
	requests := envInt("TABREDUCE_BENCH_REDIS_N", 50_000)
	groups := []string{"set,get", "lpush,rpop", "mset"}
	type key struct {
		pipeline int
		test     string
	}
	rps := map[key][2][]float64{} // per server, one figure a round
	ratios := map[key][]float64{}
	for _, p := range []int{1, 16} {
		n := requests
		if p > 1 {
			n *= 4
		}
		for r := range rounds {
			for _, g := range groups {
				var got [2]map[string]float64
				for j := range 2 {
					i := (j + r) % 2 // who goes first alternates
					if got[i], err = redisBenchmark(bench, ports[i], g, p, n); err != nil {
						b.Fatal(err)
					}
				}
				for test, v := range got[0] {
					k := key{p, test}
					figures := rps[k]
					figures[0], figures[1] = append(figures[0], v), append(figures[1], got[1][test])
					rps[k] = figures
					if got[1][test] > 0 {
						ratios[k] = append(ratios[k], v/got[1][test])
					}
				}
			}
		}
	}
	b.StopTimer()
	fmt.Printf("\n%-14s %4s %12s %12s %14s  (medians of %d rounds; ratio range)\n", "command", "-P", "tabreduce/s", "redis/s", "ratio", rounds)
	for _, p := range []int{1, 16} {
		for _, test := range []string{"SET", "GET", "LPUSH", "RPOP", "MSET (10 keys)"} {
			k := key{p, test}
			if len(ratios[k]) == 0 {
				continue
			}
			rs := slices.Sorted(slices.Values(ratios[k]))
			fmt.Printf("%-14s %4d %12.0f %12.0f %6.2f %.2f-%.2f\n", test, p, median(rps[k][0]), median(rps[k][1]), median(rs), rs[0], rs[len(rs)-1])
			b.ReportMetric(median(rs), fmt.Sprintf("%s-P%d-ratio", strings.ToLower(strings.Fields(test)[0]), p))
		}
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// startBenchBroker starts the binary with the Redis protocol, fsync
// everysec, and returns its Redis port.
func startBenchBroker(b *testing.B) string {
	p := startBroker(b, tabreduceBin(b), b.TempDir(), "everysec", "--redis-addr", "127.0.0.1:0")
	return p.waitFor(b, redisRE, "redis protocol on")[1]
}

// startRedisServer starts redis-server with an append-only file fsynced
// every second and returns its port.
func startRedisServer(b *testing.B, path string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "everysec",
		"--save", "", "--dir", b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(procWait)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return port
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("redis-server did not listen on %s", port)
	return ""
}

// redisBenchmark runs redis-benchmark and returns requests per second by
// test name.
func redisBenchmark(path, port, tests string, pipeline, n int) (map[string]float64, error) {
	out, err := exec.Command(path, "-p", port, "-t", tests, "-n", strconv.Itoa(n), "-P", strconv.Itoa(pipeline), "--csv").Output()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark -p %s: %v", port, err)
	}
	return parseRedisCSV(out)
}

// parseRedisCSV reads redis-benchmark's --csv output: requests per second
// by test name.
func parseRedisCSV(out []byte) (map[string]float64, error) {
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark output %q: %v", out, err)
	}
	rps := map[string]float64{}
	for _, row := range rows[1:] {
		if v, err := strconv.ParseFloat(row[1], 64); err == nil {
			rps[row[0]] = v
		}
	}
	return rps, nil
}
