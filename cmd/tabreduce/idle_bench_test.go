package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/server/servertest"
)

// BenchmarkIdleSockets measures a running server's resident set per idle
// worker socket, read from outside (/proc/PID/status, VmRSS) with no
// collection forced: the binary serves, this process connects the workers
// (TABREDUCE_BENCH_SOCKETS, default 20,000; each says HELLO, is WELCOMEd
// and then only heartbeats), and the growth of the server's RSS over its
// RSS before the first is divided by the sockets. The file limit is raised
// as far as the machine allows (this process and the server each need one
// descriptor a socket); with a lower limit the benchmark connects fewer
// sockets and says so. TABREDUCE_BENCH_SERVE_ARGS adds flags to the
// server's (such as --pprof-addr) and TABREDUCE_BENCH_HOLD holds the
// sockets open that long after measuring, to profile the server.
func BenchmarkIdleSockets(b *testing.B) {
	want := envInt("TABREDUCE_BENCH_SOCKETS", 20_000)
	limit := raiseFileLimit(uint64(want) + 1024)
	b.Logf("file limit: %d descriptors a process", limit)
	conns := min(want, int(limit)-512)
	if conns < want {
		b.Logf("the file limit allows %d sockets of the %d asked for", conns, want)
	}
	n := strconv.Itoa(conns + 16)
	args := append([]string{"--max-anon-workers", n, "--max-anon-workers-per-addr", n}, strings.Fields(os.Getenv("TABREDUCE_BENCH_SERVE_ARGS"))...)
	p := startBroker(b, tabreduceBin(b), b.TempDir(), "everysec", args...)
	pid := p.cmd.Process.Pid
	time.Sleep(time.Second) // let the server's start settle
	before := vmRSS(b, pid)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rssHalf, rssFull int64
	var wg sync.WaitGroup
	defer wg.Wait()
	all := connectIdle(b, ctx, &wg, p.url, conns/2)
	time.Sleep(2 * time.Second)
	rssHalf = vmRSS(b, pid)
	all = append(all, connectIdle(b, ctx, &wg, p.url, conns-conns/2)...)
	time.Sleep(2 * time.Second)
	rssFull = vmRSS(b, pid)
	b.ReportMetric(float64(rssFull-before)/float64(conns)/1024, "rss-KiB/socket")
	b.ReportMetric(float64(rssFull-rssHalf)/float64(conns-conns/2)/1024, "rss-KiB/socket-2nd-half")
	b.ReportMetric(float64(conns), "sockets")
	b.ReportMetric(float64(limit), "file-limit")
	fmt.Printf("\n%d idle worker sockets: server RSS %d MiB before, %d MiB at %d, %d MiB at %d: %.1f KiB a socket (%.1f KiB each of the second half); file limit %d\n",
		conns, before>>20, rssHalf>>20, conns/2, rssFull>>20, conns, float64(rssFull-before)/float64(conns)/1024,
		float64(rssFull-rssHalf)/float64(conns-conns/2)/1024, limit)
	if d, err := time.ParseDuration(os.Getenv("TABREDUCE_BENCH_HOLD")); err == nil {
		time.Sleep(d) // time to profile the server
	}
	cancel()
	for _, c := range all {
		c.CloseNow()
	}
}

// raiseFileLimit raises this process's descriptor limit (which the server
// it starts inherits) to want, or as far as it may, and returns the limit.
func raiseFileLimit(want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	if lim.Cur >= want {
		return lim.Cur
	}
	if lim.Max < want {
		if raw, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if max, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64); err == nil {
				try := syscall.Rlimit{Cur: min(want, max), Max: min(want, max)}
				if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try) == nil { // root only
					return try.Cur
				}
			}
		}
	}
	lim.Cur = min(want, lim.Max)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

// connectIdle connects n idle workers to the server at url and keeps them
// heartbeating until ctx ends.
func connectIdle(b *testing.B, ctx context.Context, wg *sync.WaitGroup, url string, n int) []*websocket.Conn {
	conns, err := servertest.DialIdleWorkers(ctx, url, n, 32)
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() { servertest.HeartbeatIdle(ctx, conns, 2*time.Second) })
	return conns
}

// vmRSS reads a process's resident set from /proc/PID/status.
func vmRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
