package engine

import (
	"strings"
	"testing"
	"time"
)

// The committer does not wait for results that will not come: a job whose
// last results leave nothing running finishes at once, however long a
// batch would wait for more.
func TestGroupCommitWaitsOnlyForWhatIsToCome(t *testing.T) {
	window := commitWindow
	commitWindow = time.Hour
	t.Cleanup(func() { commitWindow = window })
	e := newTestEngine(t, Config{})
	st := e.submit(t, Spec{Reducers: 2, ChunkSize: 2}, strings.Repeat("x\n", 30))
	w := e.connect(t, 4, true)
	if got := w.serve(e, st.ID, nil, noopAnswer(2)); got.State != StateDone {
		t.Fatalf("state %s, error %q", got.State, got.Error)
	}
}
