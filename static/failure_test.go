package static_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBrowserFailures: a module that ends its instance (proc_exit, as a
// trap does) fails its job with the error shown on the dashboard; a module
// that never returns is stopped by its task's timeout, which terminates the
// Web Worker running it; and the tab then runs the next job correctly on a
// fresh Web Worker.
func TestBrowserFailures(t *testing.T) {
	bctx := browser(t)
	srv := startServer(t)
	trap := uploadModule(t, srv, "./testdata/trap")
	loop := uploadModule(t, srv, "github.com/tabreduce/tabreduce/wasm/runner/testdata/loop")
	wc := uploadModule(t, srv, wordcountPkg)

	worker, _ := tab(t, bctx, srv.URL()+"/worker?slots=1")
	dash, _ := tab(t, bctx, srv.URL()+"/dashboard")
	waitUntil(t, 20*time.Second, "a browser worker connects", func() bool { return browserWorkers(srv) == 1 })

	trapJob := submitJSON(t, srv, map[string]any{"module": trap, "input": "exit now\n", "max_attempts": 2})
	st := waitJob(t, srv, trapJob, 30*time.Second)
	// The tab is untrusted: its failure counts once the server's own run of
	// the task fails too, and then the job fails at once, after one try on
	// the tab.
	if st.State != "failed" || !strings.Contains(st.Error, "proc_exit(3)") || !strings.Contains(st.Error, "the server's own run failed too") {
		t.Fatalf("trap job: want failed with proc_exit(3), confirmed by the server's own run, got %s %q", st.State, st.Error)
	}
	shown := func(id, want string) func() bool {
		expr := fmt.Sprintf(`(() => { const e = document.querySelector('tr[data-job-detail=%q] .job-error'); return e ? e.textContent : '' })()`, id)
		return func() bool { return strings.Contains(evalJS[string](t, dash, expr), want) }
	}
	waitUntil(t, 5*time.Second, "the dashboard shows the trap's error", shown(trapJob, "proc_exit(3)"))
	screenshot(t, dash, "dashboard-trap.png")

	divJob := submitJSON(t, srv, map[string]any{"module": trap, "input": "divide\n", "max_attempts": 1})
	if st := waitJob(t, srv, divJob, 30*time.Second); st.State != "failed" || !strings.Contains(st.Error, "divide by zero") {
		t.Fatalf("divide job: want failed with a divide by zero, got %s %q", st.State, st.Error)
	}

	loopJob := submitJSON(t, srv, map[string]any{"module": loop, "input": "spin\n", "max_attempts": 1, "task_timeout": 1})
	st = waitJob(t, srv, loopJob, 30*time.Second)
	// The server or the browser times the task out, whichever is first;
	// either way the tab terminates the Web Worker that runs it (a CANCEL
	// or its own timer).
	if st.State != "failed" || !strings.Contains(st.Error, "time") {
		t.Fatalf("loop job: want failed by a timeout, got %s %q", st.State, st.Error)
	}
	waitUntil(t, 5*time.Second, "the dashboard shows the timeout", shown(loopJob, "time"))

	// The slot's fresh Web Worker runs the next job.
	text := "the cat and THE hat\nthe end\n"
	okJob := submitJSON(t, srv, map[string]any{"module": wc, "input": text, "reducers": 2})
	if st := waitJob(t, srv, okJob, 30*time.Second); st.State != "done" {
		t.Fatalf("job after the failures: %s %q", st.State, st.Error)
	}
	if got, want := fetchOutput(t, srv, okJob), wordcountOracle([]byte(text)); string(got) != string(want) {
		t.Fatalf("output %q, want %q", got, want)
	}
	// The trap and the divide failed on the tab once each; the loop counts
	// too when the tab's own timer stops it before the server's CANCEL.
	if n := evalJS[int](t, worker, `window.tabreduce.last.tasksFailed`); n < 2 || n > 3 {
		t.Errorf("the volunteer page counts %d failed tasks, want 2 or 3 (trap once, divide once, the loop if the tab timed it out)", n)
	}
}
