package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkOutsideLoad measures RestMQ's push (POST /q/bench, 100-byte
// bodies) and hard get (GET /q/bench) with Debian's wrk, a load generator
// in a process of its own, against redis-server's LPUSH and RPOP (AOF,
// appendfsync everysec) driven by redis-benchmark, at 16 and 64
// connections, alternated in one run so that load from elsewhere falls on
// all of them. Besides requests/s it reads each server's CPU time and
// context switches from /proc, per request. TABREDUCE_BENCH_BASE names an
// older tabreduce binary to measure beside this one (old against new);
// TABREDUCE_BENCH_ROUNDS the rounds (default 3), TABREDUCE_BENCH_SECONDS
// each wrk run's length (default 3); TABREDUCE_BENCH_SERVE_ARGS adds
// flags to the servers' (such as --pprof-addr).
func BenchmarkOutsideLoad(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not installed: run `make wrk`")
	}
	bench, err1 := exec.LookPath("redis-benchmark")
	rserver, err2 := exec.LookPath("redis-server")
	if err1 != nil || err2 != nil {
		b.Skip("redis-server or redis-benchmark is not installed: run `make redis`")
	}
	scripts := writeWrkScripts(b)
	targets := []*loadTarget{}
	if base := os.Getenv("TABREDUCE_BENCH_BASE"); base != "" {
		targets = append(targets, startLoadTarget(b, "base", base))
	}
	targets = append(targets, startLoadTarget(b, "tabreduce", tabreduceBin(b)))
	redisPort := startRedisServer(b, rserver)
	redisPid := pidOnPort(b, redisPort)
	rounds := envInt("TABREDUCE_BENCH_ROUNDS", 3)
	secs := envInt("TABREDUCE_BENCH_SECONDS", 3)
	type key struct{ who, op string }
	figures := map[key][]loadFigure{}
	for r := range rounds {
		for _, conns := range []int{16, 64} {
			// ours first on even rounds, redis first on odd ones
			order := slices.Clone(targets)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			runRedis := func() {
				n := 60_000 * secs
				before := readProcStat(b, redisPid)
				got, err := redisBenchmarkConns(bench, redisPort, "lpush,rpop", conns, n)
				if err != nil {
					b.Fatal(err)
				}
				after := readProcStat(b, redisPid)
				// CPU is shared between the two tests; split it by requests.
				cpu := after.sub(before)
				for _, op := range []string{"LPUSH", "RPOP"} {
					f := loadFigure{rps: got[op]}
					f.cpuUS = cpu.cpu.Seconds() * 1e6 / float64(2*n)
					f.ctxPerK = float64(cpu.nvcsw) * 1000 / float64(2*n)
					figures[key{"redis", fmt.Sprintf("%s c%d", strings.ToLower(op), conns)}] = append(figures[key{"redis", fmt.Sprintf("%s c%d", strings.ToLower(op), conns)}], f)
				}
			}
			if r%2 == 1 {
				runRedis()
			}
			for _, t := range order {
				push := t.wrk(b, wrk, scripts.push, conns, secs, "/q/bench")
				figures[key{t.name, fmt.Sprintf("push c%d", conns)}] = append(figures[key{t.name, fmt.Sprintf("push c%d", conns)}], push)
				t.fill(b, bench, int(push.rps)*secs+100_000)
				get := t.wrk(b, wrk, scripts.get, conns, secs, "/q/bench")
				if get.non200 > 0 {
					b.Fatalf("%s: %d hard gets found the queue empty: fill it with more", t.name, get.non200)
				}
				figures[key{t.name, fmt.Sprintf("get c%d", conns)}] = append(figures[key{t.name, fmt.Sprintf("get c%d", conns)}], get)
			}
			if r%2 == 0 {
				runRedis()
			}
		}
	}
	b.StopTimer()
	fmt.Printf("\n%-10s %-10s %10s %8s %10s %10s %10s   (medians of %d rounds of %d s; ratio to Redis's LPUSH/RPOP at the same connections, range)\n",
		"server", "op", "req/s", "p99 ms", "CPU us/req", "ctxsw/1k", "vs redis", rounds, secs)
	for _, conns := range []int{16, 64} {
		for _, op := range []string{"push", "get"} {
			peer := figures[key{"redis", fmt.Sprintf("%s c%d", map[string]string{"push": "lpush", "get": "rpop"}[op], conns)}]
			for _, t := range targets {
				fs := figures[key{t.name, fmt.Sprintf("%s c%d", op, conns)}]
				var ratios []float64
				for i := range fs {
					ratios = append(ratios, fs[i].rps/peer[i].rps)
				}
				rs := slices.Sorted(slices.Values(ratios))
				fmt.Printf("%-10s %-10s %10.0f %8.2f %10.1f %10.0f %6.2f %.2f-%.2f\n", t.name, fmt.Sprintf("%s c%d", op, conns),
					medianOf(fs, func(f loadFigure) float64 { return f.rps }), medianOf(fs, func(f loadFigure) float64 { return f.p99ms }),
					medianOf(fs, func(f loadFigure) float64 { return f.cpuUS }), medianOf(fs, func(f loadFigure) float64 { return f.ctxPerK }),
					median(rs), rs[0], rs[len(rs)-1])
				if t.name == "tabreduce" {
					b.ReportMetric(median(rs), fmt.Sprintf("%s-c%d-ratio", op, conns))
				}
			}
			fmt.Printf("%-10s %-10s %10.0f %8s %10.1f %10.0f\n", "redis", fmt.Sprintf("%s c%d", map[string]string{"push": "lpush", "get": "rpop"}[op], conns),
				medianOf(peer, func(f loadFigure) float64 { return f.rps }), "-",
				medianOf(peer, func(f loadFigure) float64 { return f.cpuUS }), medianOf(peer, func(f loadFigure) float64 { return f.ctxPerK }))
		}
	}
}

// loadFigure is one run's result.
type loadFigure struct {
	rps, p99ms, cpuUS, ctxPerK float64
	non200                     int
}

func medianOf(fs []loadFigure, v func(loadFigure) float64) float64 {
	var s []float64
	for _, f := range fs {
		s = append(s, v(f))
	}
	return median(s)
}

// loadTarget is one tabreduce server under load.
type loadTarget struct {
	name, url, redisPort string
	pid                  int
}

func startLoadTarget(b *testing.B, name, bin string) *loadTarget {
	args := append([]string{"--redis-addr", "127.0.0.1:0"}, strings.Fields(os.Getenv("TABREDUCE_BENCH_SERVE_ARGS"))...)
	p := startBroker(b, bin, b.TempDir(), "everysec", args...)
	return &loadTarget{name: name, url: p.url, redisPort: p.waitFor(b, redisRE, "redis protocol on")[1], pid: p.cmd.Process.Pid}
}

// wrk runs wrk with script for secs seconds and reads the server's CPU and
// context switches around it.
func (t *loadTarget) wrk(b *testing.B, wrk, script string, conns, secs int, path string) loadFigure {
	before := readProcStat(b, t.pid)
	out, err := exec.Command(wrk, "-t", "2", "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", secs), "--latency", "-s", script, t.url+path).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", t.url, err, out)
	}
	d := readProcStat(b, t.pid).sub(before)
	f, err := parseWrk(string(out))
	if err != nil {
		b.Fatal(err)
	}
	n := f.rps * float64(secs)
	f.cpuUS = d.cpu.Seconds() * 1e6 / n
	f.ctxPerK = float64(d.nvcsw) * 1000 / n
	return f
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99    = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
	wrkNon200 = regexp.MustCompile(`NON200 (\d+)`)
	wrkErrors = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

func parseWrk(out string) (loadFigure, error) {
	var f loadFigure
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return f, fmt.Errorf("wrk said no Requests/sec:\n%s", out)
	}
	if e := wrkErrors.FindString(out); e != "" {
		return f, fmt.Errorf("wrk: %s\n%s", e, out)
	}
	f.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkP99.FindStringSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		f.p99ms = v * map[string]float64{"us": 0.001, "ms": 1, "s": 1000}[m[2]]
	}
	if m := wrkNon200.FindStringSubmatch(out); m != nil {
		f.non200, _ = strconv.Atoi(m[1])
	}
	return f, nil
}

// fill pushes n 100-byte messages to queue bench through the Redis port,
// pipelined, so that the hard gets that follow never find it empty.
func (t *loadTarget) fill(b *testing.B, bench string, n int) {
	out, err := exec.Command(bench, "-p", t.redisPort, "-c", "4", "-P", "64", "-n", strconv.Itoa(n), "-q",
		"rpush", "bench", strings.Repeat("x", 100)).CombinedOutput()
	if err != nil {
		b.Fatalf("fill %s: %v\n%s", t.name, err, out)
	}
}

// redisBenchmarkConns is redisBenchmark with a number of connections
// (redis-benchmark's -c) and no pipelining.
func redisBenchmarkConns(path, port, tests string, conns, n int) (map[string]float64, error) {
	out, err := exec.Command(path, "-p", port, "-c", strconv.Itoa(conns), "-t", tests, "-n", strconv.Itoa(n), "-d", "100", "--csv").Output()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark -p %s: %v", port, err)
	}
	return parseRedisCSV(out)
}

// procStat is a process's CPU time and involuntary context switches (all
// its threads).
type procStat struct {
	cpu   time.Duration
	nvcsw int64
}

func (a procStat) sub(b procStat) procStat { return procStat{a.cpu - b.cpu, a.nvcsw - b.nvcsw} }

// readProcStat reads /proc/PID/stat (utime + stime, in clock ticks of
// 1/100 s on Linux) and sums nonvoluntary_ctxt_switches over
// /proc/PID/task/*/status.
func readProcStat(b *testing.B, pid int) procStat {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis: state is field 3.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	s := procStat{cpu: time.Duration(ut+st) * 10 * time.Millisecond}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, path := range tasks {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				s.nvcsw += n
			}
		}
	}
	return s
}

// pidOnPort finds the process listening on 127.0.0.1:port (redis-server,
// which the benchmark started) through /proc/net/tcp's socket inode.
func pidOnPort(b *testing.B, port string) int {
	out, err := exec.Command("sh", "-c", "ss -Hltnp 'sport = :"+port+"'").Output()
	if err != nil {
		b.Fatalf("ss: %v", err)
	}
	m := regexp.MustCompile(`pid=(\d+)`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("no process listens on %s: %s", port, out)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	return pid
}

type wrkScripts struct{ push, get string }

// writeWrkScripts writes wrk's Lua scripts: a push of a 100-byte body, and
// a hard get that counts the answers that were not a message.
func writeWrkScripts(b *testing.B) wrkScripts {
	dir := b.TempDir()
	s := wrkScripts{filepath.Join(dir, "push.lua"), filepath.Join(dir, "get.lua")}
	push := `wrk.method = "POST"
wrk.body = string.rep("x", 100)
wrk.headers["Content-Type"] = "application/octet-stream"
`
	get := `local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body) if status ~= 200 then non200 = non200 + 1 end end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("non200") end
  io.write(string.format("NON200 %d\n", n))
end
`
	if err := os.WriteFile(s.push, []byte(push), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(s.get, []byte(get), 0o644); err != nil {
		b.Fatal(err)
	}
	return s
}
