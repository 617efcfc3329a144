package engine

import (
	"context"
	"strings"
	"testing"
	"time"
)

// heldAhead starts a job of tasks tasks on a whose one worker (one slot)
// takes its credit's worth and answers nothing, with a leasing ahead as if
// its workers had been taking 10,000 tasks a second; it waits until a
// holds the rest of the job leased and returns the job's id and the tasks
// a's worker holds, with that worker.
func heldAhead(t *testing.T, a *testEngine, tasks int) (string, *fakeWorker) {
	t.Helper()
	a.mu.Lock()
	a.intake.rate = 1e4
	a.mu.Unlock()
	w := a.connect(t, 1, true)
	st := a.submit(t, Spec{ChunkSize: 1, Reducers: 1}, strings.Repeat("x\n", tasks))
	w.tasks()
	deadline := time.Now().Add(waitFor)
	for {
		a.mu.Lock()
		held := 0
		if j := a.jobs[st.ID]; j != nil {
			held = len(j.ahead.leases)
		}
		a.mu.Unlock()
		if held > 0 {
			return st.ID, w
		}
		if time.Now().After(deadline) {
			t.Fatalf("A leased nothing ahead for its worker in %v", waitFor)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHeldLeasesGoBack: the tasks a server leased ahead for its own
// workers, and that they did not take, go back to the queue for the other
// servers' workers, long before the leases would lapse (the task timeout
// and 30 s); the job then finishes with every task counted once.
func TestHeldLeasesGoBack(t *testing.T) {
	url := startRedis(t)
	a, b := newSharedEngine(t, url, "A"), newSharedEngine(t, url, "B")
	const tasks = 40
	id, wa := heldAhead(t, a, tasks)
	// A's worker holds two tasks and A the others: B's worker gets only
	// what A gives back.
	wb := b.connect(t, 64, true)
	start := time.Now()
	got := wb.tasks()
	t.Logf("B's worker got %d tasks %v after it came", len(got), time.Since(start).Round(time.Millisecond))
	for _, tk := range got {
		wb.answer(tk, emptyMap(1))
	}
	wa.tr.Close("the test is done with it") // A returns the two it held
	st := wb.serve(b, id, nil, noopAnswer(1))
	if done := st.Phases[PhaseMap].Done; st.State != StateDone || done != tasks {
		t.Fatalf("job %s %s with %d map tasks done, want done with %d", id, st.State, done, tasks)
	}
}

// TestStoppingGivesBackHeldLeases: an engine that stops returns what it
// leased ahead to the queue at once, not when its leases lapse.
func TestStoppingGivesBackHeldLeases(t *testing.T) {
	url := startRedis(t)
	a, b := newSharedEngine(t, url, "A"), newSharedEngine(t, url, "B")
	const tasks = 40
	id, _ := heldAhead(t, a, tasks)
	a.mu.Lock()
	held := len(a.jobs[id].ahead.leases)
	a.mu.Unlock()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := b.q.Stats(context.Background(), mapQueue(id))
	if err != nil {
		t.Fatal(err)
	}
	if info.Length < int64(held) {
		t.Fatalf("after A stopped its job's map queue has %d tasks waiting (%d in flight), want the %d A held ahead at least", info.Length, info.InFlight, held)
	}
}
