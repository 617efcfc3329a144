package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/jobs"
)

// The size test: a wordcount that used to stall for good. 120 MB of text
// over a two-million-word vocabulary, one reducer, every limit at its
// default: the partition (about 100 MB grouped) is more than one task may
// carry, so it is reduced by follow-up tasks, each in frames the workers
// accept, while the server's memory stays bounded. It must finish with the
// plain program's output, byte for byte; the test logs its makespan and
// the server's peak RSS against the plain program's.
const (
	sizeBytes = 120 << 20
	sizeVocab = 2_000_000
	sizeWait  = 10 * time.Minute
)

func TestWordcountAtSize(t *testing.T) {
	if os.Getenv("TABREDUCE_SIZE") == "" {
		t.Skip("120 MB through the binary takes minutes on two cores: TABREDUCE_SIZE=1 runs it (docs/BENCHMARKS.md)")
	}
	if _, err := jobs.Builtin("wordcount"); errors.Is(err, jobs.ErrNotBuilt) {
		t.Fatal("built-in job wordcount is not embedded: run `make jobs` before `go test` (`make test` does)")
	}
	bin := tabreduceBin(t)
	work := t.TempDir()
	plain := filepath.Join(work, "plainwc")
	if out, err := exec.Command("go", "build", "-o", plain, "./testdata/plainwc").CombinedOutput(); err != nil {
		t.Fatalf("build the plain program: %v\n%s", err, out)
	}
	input := filepath.Join(work, "big.txt")
	writeVocabCorpus(t, input, sizeBytes, sizeVocab, 7)

	// The plain program, alone.
	want := filepath.Join(work, "want.tsv")
	plainTime, plainRSS := runMeasured(t, plain, want, input)
	t.Logf("the plain program: %v, peak RSS %d MiB", plainTime.Round(10*time.Millisecond), plainRSS>>20)

	// The job: a server and two workers of one slot each, defaults only.
	dir := filepath.Join(work, "data")
	srv := startBroker(t, bin, dir, "everysec")
	startWorker(t, bin, srv.url, "w1", 1)
	startWorker(t, bin, srv.url, "w2", 1)
	t0 := time.Now()
	code, stdout, stderr := runBin(t, bin, sizeWait, "submit", "--server", srv.url, "--job", "wordcount",
		"--input", input, "--reducers", "1", "--wait")
	makespan := time.Since(t0)
	if code != 0 {
		t.Fatalf("submit --wait: exit %d; stderr:\n%s", code, tail(stderr, 4<<10))
	}
	id := lastLine(stdout)
	j := getJob(t, srv.url, id)
	got := filepath.Join(work, "got.tsv")
	outFile, err := os.Create(got)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "output", "--server", srv.url, id)
	var outErr bytes.Buffer
	cmd.Stdout, cmd.Stderr = outFile, &outErr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tabreduce output: %v %s", err, outErr.String())
	}
	outFile.Close()
	same, err := sameFiles(got, want)
	if err != nil || !same {
		t.Errorf("the job's output differs from the plain program's (%v)", err)
	}
	// The server's peak RSS, from the kernel once it has stopped.
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.wait(t)
	serverRSS := maxRSS(srv.cmd.ProcessState)
	t.Logf("120 MB, %d distinct words, 1 reducer: %d map and %d reduce tasks, %d spilled runs; makespan %v = %.2fx the plain program's %v; server peak RSS %d MiB = %.2fx the plain program's %d MiB",
		j.Records, j.Phases["map"].Total, j.Phases["reduce"].Total, j.SpilledRuns,
		makespan.Round(10*time.Millisecond), makespan.Seconds()/plainTime.Seconds(), plainTime.Round(10*time.Millisecond),
		serverRSS>>20, float64(serverRSS)/float64(plainRSS), plainRSS>>20)
	if j.Phases["reduce"].Total < 2 {
		t.Errorf("%d reduce tasks: the partition should have been more than one task's worth", j.Phases["reduce"].Total)
	}
}

// writeVocabCorpus writes about size bytes of words drawn uniformly from a
// vocabulary of vocab words, twelve to a line.
func writeVocabCorpus(t *testing.T, path string, size, vocab int, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(seed, 3))
	var line []byte
	written := 0
	for written < size {
		line = line[:0]
		for i := range 12 {
			if i > 0 {
				line = append(line, ' ')
			}
			line = append(line, 'w')
			line = strconv.AppendInt(line, int64(r.IntN(vocab)), 36)
		}
		line = append(line, '\n')
		n, _ := w.Write(line)
		written += n
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// runMeasured runs a program with its stdout in a file and returns its wall
// time and peak RSS.
func runMeasured(t *testing.T, prog, stdout string, args ...string) (time.Duration, int64) {
	t.Helper()
	out, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(prog, args...)
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", prog, err, stderr.String())
	}
	return time.Since(t0), maxRSS(cmd.ProcessState)
}

// maxRSS is a finished process's peak resident set, in bytes.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10 // kilobytes on Linux
	}
	return 0
}

// sameFiles reports whether two files hold the same bytes, reading both as
// streams.
func sameFiles(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ra, rb := bufio.NewReaderSize(fa, 1<<20), bufio.NewReaderSize(fb, 1<<20)
	for line := 1; ; line++ {
		la, ea := ra.ReadBytes('\n')
		lb, eb := rb.ReadBytes('\n')
		if !bytes.Equal(la, lb) {
			return false, fmt.Errorf("line %d: %q against %q", line, la, lb)
		}
		if ea != nil || eb != nil {
			return ea == eb, nil
		}
	}
}
