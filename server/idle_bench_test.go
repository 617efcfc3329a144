package server_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/servertest"
)

// idleClientsEnv makes the test binary a client process: it connects the
// given number of idle workers to the given URL (see BenchmarkIdleWorkers).
const idleClientsEnv = "TABREDUCE_BENCH_IDLE_CLIENTS"

func init() {
	if spec := os.Getenv(idleClientsEnv); spec != "" {
		os.Exit(runIdleClients(spec))
	}
}

// BenchmarkIdleWorkers measures the server's memory per connected idle
// worker: 5,000 workers (in a separate process, so their memory is not
// counted) say HELLO, get WELCOME and then only heartbeat. The metrics are
// the growth of the server process's Go heap+stacks and of its resident
// set, divided by the connections.
func BenchmarkIdleWorkers(b *testing.B) {
	const conns = 5000
	// Every client here dials from 127.0.0.1: lift the anonymous caps.
	srv := benchServerWith(b, server.Config{MaxAnonWorkers: conns + 16, MaxAnonWorkersPerAddr: conns + 16})
	before := serverMemory()
	var heap, rss float64
	for range b.N {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", idleClientsEnv, srv.URL(), conns))
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		// The client prints "connected" once every worker was welcomed.
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "connected" {
			cmd.Process.Kill()
			cmd.Wait()
			b.Fatalf("client process: %q", line)
		}
		if n := len(srv.Engine().Workers()); n != conns {
			b.Errorf("server sees %d workers, want %d", n, conns)
		}
		after := serverMemory()
		heap += float64(after.goBytes-before.goBytes) / conns
		rss += float64(after.rss-before.rss) / conns
		cmd.Process.Kill()
		cmd.Wait()
		waitWorkers(b, srv.Engine().Workers, 0)
	}
	b.ReportMetric(heap/float64(b.N)/1024, "heap-KiB/worker")
	b.ReportMetric(rss/float64(b.N)/1024, "rss-KiB/worker")
}

type memory struct{ goBytes, rss int64 }

// serverMemory returns this process's Go heap and stacks in use after a
// collection, and its resident set.
func serverMemory() memory {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{goBytes: int64(ms.HeapInuse + ms.StackInuse)}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.rss = kb << 10
			}
		}
	}
	return m
}

func waitWorkers[T any](b *testing.B, list func() []T, n int) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(list()) != n {
		if time.Now().After(deadline) {
			b.Fatalf("%d workers connected, want %d", len(list()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runIdleClients connects n idle workers to url ("URL,N"), prints
// "connected" and heartbeats until killed.
func runIdleClients(spec string) int {
	url, nstr, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(nstr)
	ctx := context.Background()
	conns, err := servertest.DialIdleWorkers(ctx, url, n, 64)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("connected")
	servertest.HeartbeatIdle(ctx, conns, 2*time.Second)
	return 0
}
