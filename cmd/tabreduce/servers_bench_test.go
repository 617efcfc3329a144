package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
)

// BenchmarkServersCPU is what a no-op task costs the servers of a service
// as it grows from one server to three on one redis-server: b.N no-op map
// tasks (per round, at least 2,000) submitted on the first server, run by
// six native workers spread evenly over the servers, and the CPU time every
// server process spent meanwhile (user + system, from /proc). The metrics
// are the servers' CPU-seconds per 1,000 tasks, summed (raw, and net of
// what they spend idle over as long, measured before), of the busiest
// server, the job's tasks/s from submission to done, and redis-server's
// commands (those its scripts run included) and script calls per task.
// Flat net sums mean no coordination cost per task that grows with the
// servers. TABREDUCE_BENCH_BASE names an older binary to run in the same
// rounds (bin=base against bin=new), TABREDUCE_BENCH_ROUNDS the rounds (2).
func BenchmarkServersCPU(b *testing.B) {
	bins := []struct{ name, path string }{{"new", tabreduceBin(b)}}
	if base := os.Getenv("TABREDUCE_BENCH_BASE"); base != "" {
		bins = append(bins, struct{ name, path string }{"base", base})
	}
	for round := range envInt("TABREDUCE_BENCH_ROUNDS", 2) {
		for i, n := range []int{1, 2, 3} {
			for k := range bins {
				// Who goes first alternates, so that load from elsewhere
				// falls on both.
				bin := bins[(k+i+round)%len(bins)]
				b.Run(fmt.Sprintf("servers=%d/round=%d/bin=%s", n, round, bin.name), func(b *testing.B) {
					serversCPURun(b, bin.path, n)
				})
			}
		}
	}
}

// serversCPURun is one round of BenchmarkServersCPU: n servers of binary
// bin, a job of b.N no-op tasks (at least 2,000). It is b.N of the round's
// own benchmark: the outer one runs once, with N = 1.
func serversCPURun(b *testing.B, bin string, n int) {
	tasks := max(b.N, 2000)
	input := filepath.Join(b.TempDir(), "noop.txt")
	if err := os.WriteFile(input, []byte(strings.Repeat("x\n", tasks)), 0o644); err != nil {
		b.Fatal(err)
	}
	rs := startRedis(b, "everysec")
	store := rs.URL("svc")
	var servers []*proc
	for i := range n {
		s := startShared(b, bin, store, string(rune('A'+i)))
		servers = append(servers, s)
		for w := range serversWorkers / n {
			startWorker(b, bin, s.url, fmt.Sprintf("w%s%d", s.name, w), 8)
		}
	}
	c := apiclient.New(servers[0].url, "")
	waitListedN(b, c, serversWorkers/n*n)
	// What the servers spend idle (heartbeats, the sharer's
	// rounds, the reaper) is measured first, to tell it from
	// what the tasks cost.
	idle := serversCPU(b, servers)
	time.Sleep(idleSample)
	idleRate := (serversCPU(b, servers) - idle) / idleSample.Seconds()
	before := make([]float64, n)
	for i, s := range servers {
		before[i] = cpuSeconds(b, s.cmd.Process.Pid)
	}
	cmds0, scripts0 := redisCommands(b, rs)
	start := time.Now()
	b.ResetTimer()
	job, err := c.SubmitJob(b.Context(), engine.Spec{Module: "noop", ChunkSize: 1, Reducers: 1, Verify: engine.VerifyNone}, apiclient.FileInput(input))
	if err != nil {
		b.Fatal(err)
	}
	waitDone(b, servers[0].url, job.ID)
	b.StopTimer()
	elapsed := time.Since(start)
	var sum, top float64
	for i, s := range servers {
		d := cpuSeconds(b, s.cmd.Process.Pid) - before[i]
		sum += d
		top = max(top, d)
	}
	b.ReportMetric(sum/float64(tasks)*1000, "cpu-s/1000tasks")
	b.ReportMetric((sum-idleRate*elapsed.Seconds())/float64(tasks)*1000, "net-cpu-s/1000tasks")
	b.ReportMetric(top/float64(tasks)*1000, "busiest-cpu-s/1000tasks")
	b.ReportMetric(idleRate*1000, "idle-cpu-ms/s")
	b.ReportMetric(float64(tasks)/elapsed.Seconds(), "tasks/s")
	cmds1, scripts1 := redisCommands(b, rs)
	b.ReportMetric(float64(cmds1-cmds0)/float64(tasks), "redis-cmds/task")
	b.ReportMetric(float64(scripts1-scripts0)/float64(tasks), "redis-scripts/task")
}

// redisCommands is what redis-server has run so far (INFO commandstats):
// every command, those scripts run included, and the script calls.
func redisCommands(b *testing.B, rs *redistest.Server) (cmds, scripts int64) {
	b.Helper()
	out, err := rs.CLI("INFO", "commandstats")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(v, ",")
		calls, _ := strconv.ParseInt(n, 10, 64)
		cmds += calls
		if name == "cmdstat_evalsha" || name == "cmdstat_eval" {
			scripts += calls
		}
	}
	return cmds, scripts
}

// serversWorkers is how many native workers (8 slots each) run the job,
// spread evenly over the servers: as many for one server as for three, so
// that what grows is the servers, not the workers.
const serversWorkers = 6

// idleSample is how long the servers' idle CPU is sampled.
const idleSample = 3 * time.Second

// serversCPU is the servers' CPU time so far, summed.
func serversCPU(b *testing.B, servers []*proc) float64 {
	sum := 0.0
	for _, s := range servers {
		sum += cpuSeconds(b, s.cmd.Process.Pid)
	}
	return sum
}

// waitListedN waits until c lists n workers.
func waitListedN(b *testing.B, c *apiclient.Client, n int) {
	b.Helper()
	deadline := time.Now().Add(workersWait)
	for {
		ws, err := c.Workers(b.Context())
		if err == nil && len(ws) == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d workers listed after %v, want %d (%v)", len(ws), workersWait, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuSeconds is a process's user + system CPU time so far.
func cpuSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's ")" start at field 3 (state).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}
