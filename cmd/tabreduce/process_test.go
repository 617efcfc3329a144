package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// The end-to-end tests run the real binary as subprocesses: `tabreduce
// serve` on a loopback port, `tabreduce worker` against it, and the client
// commands. This file starts, waits for and kills them.

// procWait bounds a process's start-up, its exit after a signal, and one
// HTTP request to it.
const procWait = 10 * time.Second

// The binary is built once per test binary, into binDir, which TestMain
// removes.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// tabreduceBin returns the path of the tabreduce binary built from this
// package, building it on first use.
func tabreduceBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "tabreduce-bin-*"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tabreduce")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = &buildError{err: err, out: out}
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// proc is one running tabreduce subprocess.
type proc struct {
	name   string // how the test log names it
	cmd    *exec.Cmd
	url    string // a server's base URL, once it listens
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{} // closed once the process is reaped
}

// startProc starts `tabreduce args...` with the test's environment (no
// token, the shared wazero cache). It is killed when the test ends, and if
// the test failed its stderr goes to the test log.
func startProc(t testing.TB, bin, name string, args ...string) *proc {
	t.Helper()
	p, err := newProc(t, bin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newProc is startProc for goroutines other than the test's, which may not
// call t.Fatal: it returns the error instead.
func newProc(t testing.TB, bin, name string, args ...string) (*proc, error) {
	p := &proc{name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "TABREDUCE_TOKEN=", "TABREDUCE_SERVER=", "TABREDUCE_CACHE="+wasmtest.CacheDir())
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			n := 2 << 10 // a worker's or a client's: a few lines
			if args[0] == "serve" {
				n = 16 << 10
			}
			t.Logf("--- %s (pid %d) stderr, last %d KiB:\n%s", p.name, p.cmd.Process.Pid, n>>10, tail(p.stderr.String(), n))
		}
	})
	t.Cleanup(func() { p.kill(t) }) // runs first: the log above is then complete
	return p, nil
}

// startBroker starts tabreduce serve on a free loopback port with its store
// in dir, and waits for the line that names the port.
func startBroker(t testing.TB, bin, dir, fsync string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--fsync", fsync,
		"--wasm-cache", wasmtest.CacheDir()}, extra...)
	p := startProc(t, bin, "serve", args...)
	p.url = p.waitFor(t, listeningRE, "listening on")[1]
	p.name = "serve " + p.url
	return p
}

var listeningRE = regexp.MustCompile(`tabreduce listening on (http://127\.0\.0\.1:\d+)`)

// startWorker starts a native worker with slots slots for the server at url.
// It connects (and reconnects) by itself; nothing waits for it.
func startWorker(t testing.TB, bin, url, name string, slots int) *proc {
	t.Helper()
	return startProc(t, bin, "worker "+name, workerArgs(url, name, slots)...)
}

func workerArgs(url, name string, slots int) []string {
	return []string{"worker", "--server", url, "--slots", strconv.Itoa(slots), "--name", name}
}

// waitFor waits until the process's stdout matches re and returns the
// submatches; the process exiting first, or procWait passing, fails the test.
func (p *proc) waitFor(t testing.TB, re *regexp.Regexp, what string) []string {
	t.Helper()
	deadline := time.After(procWait)
	for {
		if m := re.FindStringSubmatch(p.stdout.String()); m != nil {
			return m
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before printing %q, want it running; stderr:\n%s", p.name, what, tail(p.stderr.String(), 4<<10))
		case <-deadline:
			t.Fatalf("%s printed no %q line after %v, want one; stdout:\n%s", p.name, what, procWait, p.stdout.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL (if the process still runs) and waits for it to go.
func (p *proc) kill(t testing.TB) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	p.wait(t)
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t testing.TB) int {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(procWait):
		t.Errorf("%s still running %v after a signal, want it gone", p.name, procWait)
		return -1
	}
}

// runBin runs `tabreduce args...` to its end (at most limit) and returns its
// exit code, stdout and stderr.
func runBin(t *testing.T, bin string, limit time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProc(t, bin, "tabreduce "+args[0], args...)
	select {
	case <-p.exited:
	case <-time.After(limit):
		p.kill(t)
		t.Fatalf("tabreduce %q still running after %v, want it finished; stderr:\n%s", args, limit, tail(p.stderr.String(), 4<<10))
	}
	return p.cmd.ProcessState.ExitCode(), p.stdout.String(), p.stderr.String()
}

// httpClient is the tests' client of the servers they start.
var httpClient = &http.Client{
	Timeout:   procWait,
	Transport: &http.Transport{MaxIdleConnsPerHost: pushClients + 2},
}

// call sends one request with a JSON or text body and returns the status
// and response body.
func call(method, url, ctype string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// syncBuffer is a bytes.Buffer the process may write while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
