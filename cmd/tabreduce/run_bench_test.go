package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// BenchmarkRunVsServerWorker times one compute-bound task (the built-in
// primes job over one range, TABREDUCE_BENCH_PRIMES numbers, default five
// million) four ways, alternated in every round so that load from elsewhere
// falls on all of them: submitted to `tabreduce serve --local-workers 1`
// (what `make run` starts) and followed to its end; `tabreduce run --job
// primes`; and `tabreduce run` of the same module under another sha256 (an
// "upload": a custom section appended), sandboxed by default and with
// --trusted. Each is timed whole: wall time (a process start and a cached
// compile for run; the upload of the input, the task's round trip and
// polls every 10 ms for the server) and CPU time (run's process; the
// server's process, which does nothing else meanwhile, from /proc), the
// fairer figure on a loaded machine. It reports the median of each and the
// median of the rounds' ratios to the server's worker.
// TABREDUCE_BENCH_RUN_ROUNDS sets the rounds (default 3).
func BenchmarkRunVsServerWorker(b *testing.B) {
	bin := tabreduceBin(b)
	dir := b.TempDir()
	n := envInt("TABREDUCE_BENCH_PRIMES", 5_000_000)
	rounds := envInt("TABREDUCE_BENCH_RUN_ROUNDS", 3)
	input := filepath.Join(dir, "range.txt")
	if err := os.WriteFile(input, fmt.Appendf(nil, "2 %d\n", n), 0o644); err != nil {
		b.Fatal(err)
	}
	builtin, err := jobs.Load("primes")
	if err != nil {
		b.Fatal(err)
	}
	upload := filepath.Join(dir, "primes-upload.wasm")
	if err := os.WriteFile(upload, withCustomSection(builtin, "upload", []byte("not the built-in")), 0o644); err != nil {
		b.Fatal(err)
	}
	srv := startBroker(b, bin, b.TempDir(), "everysec", "--local-workers", "1")
	client := apiclient.New(srv.url, "")

	ways := []struct {
		name string
		run  func() (string, time.Duration, error) // output, CPU time
	}{
		{"server worker", func() (string, time.Duration, error) { return serverPrimes(client, srv.cmd.Process.Pid, input) }},
		{"run built-in", func() (string, time.Duration, error) { return runPrimes(bin, "--job", "primes", "--input", input) }},
		{"run upload --trusted", func() (string, time.Duration, error) {
			return runPrimes(bin, "--job", upload, "--trusted", "--input", input)
		}},
		{"run upload sandboxed", func() (string, time.Duration, error) { return runPrimes(bin, "--job", upload, "--input", input) }},
	}
	// One warm-up of each: the compile caches, the server's first task.
	want := ""
	for _, w := range ways {
		out, _, err := w.run()
		if err != nil {
			b.Fatalf("%s: %v", w.name, err)
		}
		if want == "" {
			want = out
		} else if out != want {
			b.Fatalf("%s printed %q, the server's worker %q: want the same count", w.name, out, want)
		}
	}
	var wall, cpu, wallRatio, cpuRatio [][]float64
	for range ways {
		wall, cpu, wallRatio, cpuRatio = append(wall, nil), append(cpu, nil), append(wallRatio, nil), append(cpuRatio, nil)
	}
	b.ResetTimer()
	for r := range rounds {
		took, used := make([]float64, len(ways)), make([]float64, len(ways))
		for j := range ways {
			i := (j + r) % len(ways) // who goes first rotates
			start := time.Now()
			_, c, err := ways[i].run()
			if err != nil {
				b.Fatalf("%s: %v", ways[i].name, err)
			}
			took[i], used[i] = time.Since(start).Seconds(), c.Seconds()
		}
		for i := range ways {
			wall[i], cpu[i] = append(wall[i], took[i]), append(cpu[i], used[i])
			wallRatio[i], cpuRatio[i] = append(wallRatio[i], took[i]/took[0]), append(cpuRatio[i], used[i]/used[0])
		}
	}
	b.StopTimer()
	fmt.Printf("\nprimes below %d, one task: medians of %d rounds; ratio = the round's figure / the server worker's (range)\n", n, rounds)
	fmt.Printf("%-22s %8s %18s %8s %18s\n", "", "wall", "wall ratio", "CPU", "CPU ratio")
	for i, w := range ways {
		wr, cr := slices.Sorted(slices.Values(wallRatio[i])), slices.Sorted(slices.Values(cpuRatio[i]))
		fmt.Printf("%-22s %6.2f s %6.2f %.2f-%.2f %6.2f s %6.2f %.2f-%.2f\n", w.name,
			median(wall[i]), median(wr), wr[0], wr[len(wr)-1], median(cpu[i]), median(cr), cr[0], cr[len(cr)-1])
		if i > 0 {
			b.ReportMetric(median(cr), strings.ReplaceAll(strings.TrimPrefix(w.name, "run "), " ", "-")+"-cpu-ratio")
		}
	}
}

// runPrimes runs `tabreduce run args...` and returns what it printed and
// the CPU time it took.
func runPrimes(bin string, args ...string) (string, time.Duration, error) {
	cmd := exec.Command(bin, append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), "TABREDUCE_CACHE="+wasmtest.CacheDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", 0, fmt.Errorf("tabreduce run %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// serverPrimes submits the primes job over input to the server (process
// pid) and returns its output once it is done, and the CPU time the server
// used meanwhile.
func serverPrimes(c *apiclient.Client, pid int, input string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	before, err := procCPU(pid)
	if err != nil {
		return "", 0, err
	}
	j, err := c.SubmitJob(ctx, api.Spec{Module: "primes", Reducers: 1}, apiclient.FileInput(input))
	if err != nil {
		return "", 0, err
	}
	if j, err = c.WaitJob(ctx, j.ID, 10*time.Millisecond, nil); err != nil {
		return "", 0, err
	}
	after, err := procCPU(pid)
	if err != nil {
		return "", 0, err
	}
	if j.State != api.StateDone {
		return "", 0, fmt.Errorf("job %s: %s %s", j.ID, j.State, j.Error)
	}
	body, err := c.Output(ctx, j.ID, "tsv")
	if err != nil {
		return "", 0, err
	}
	defer body.Close()
	var out strings.Builder
	_, err = io.Copy(&out, body)
	return out.String(), after - before, err
}

// procCPU is the user and system time process pid has used, from
// /proc/PID/stat (Linux; clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(stat, ')') // the command's name may hold spaces
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat(5)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// withCustomSection returns wasm with a custom section appended: the same
// module to a runtime, another sha256 to the server and to run.
func withCustomSection(wasm []byte, name string, data []byte) []byte {
	payload := appendULEB(nil, uint64(len(name)))
	payload = append(append(payload, name...), data...)
	out := append(slices.Clip(wasm), 0) // section id 0: custom
	out = appendULEB(out, uint64(len(payload)))
	return append(out, payload...)
}

func appendULEB(dst []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			dst = append(dst, c|0x80)
			continue
		}
		return append(dst, c)
	}
}
