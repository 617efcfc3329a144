package main

import (
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkRedisBenchmark runs Debian's redis-benchmark against the binary's
// Redis port (fsync everysec) and against Debian's redis-server (AOF,
// appendfsync everysec) in the same run, alternating which goes first, and
// reports each command's throughput on both and their ratio, at -P 1 and
// -P 16. Run it with `make bench-redis`.
func BenchmarkRedisBenchmark(b *testing.B) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.Skip("redis-benchmark is not installed: run `make redis`")
	}
	server, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("redis-server is not installed: run `make redis`")
	}
	ours := startBenchBroker(b)
	theirs := startRedisServer(b, server)
	const rounds = 3
	requests := envInt("TABREDUCE_BENCH_REDIS_N", 100_000)
	tests := "set,get,lpush,rpop,mset"
	type key struct {
		pipeline int
		test     string
	}
	sum := map[key][2]float64{}
	for _, p := range []int{1, 16} {
		for r := range rounds {
			order := []int{0, 1}
			if r%2 == 1 {
				order = []int{1, 0}
			}
			for _, i := range order {
				port := []string{ours, theirs}[i]
				rps, err := redisBenchmark(bench, port, tests, p, requests)
				if err != nil {
					b.Fatal(err)
				}
				for test, v := range rps {
					s := sum[key{p, test}]
					s[i] += v / rounds
					sum[key{p, test}] = s
				}
			}
		}
	}
	b.StopTimer()
	fmt.Printf("\n%-14s %4s %12s %12s %7s\n", "command", "-P", "tabreduce/s", "redis/s", "ratio")
	for _, p := range []int{1, 16} {
		for _, test := range []string{"SET", "GET", "LPUSH", "RPOP", "MSET (10 keys)"} {
			s := sum[key{p, test}]
			if s[1] == 0 {
				continue
			}
			fmt.Printf("%-14s %4d %12.0f %12.0f %7.2f\n", test, p, s[0], s[1], s[0]/s[1])
			name := strings.ToLower(strings.Fields(test)[0])
			b.ReportMetric(s[0]/s[1], fmt.Sprintf("%s-P%d-ratio", name, p))
		}
	}
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
