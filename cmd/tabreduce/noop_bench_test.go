package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

// BenchmarkNoopWorkerProcesses is the platform's cost per task with the
// workers in processes of their own, as volunteers' machines are: the
// binary serves (buntdb, --fsync everysec), 1, 2 and 4 `tabreduce worker`
// processes of 16 slots each connect, a warm-up job lets each compile the
// module, and then a job of b.N no-op map tasks (at least 20,000; one
// input line each, verify none) runs. The metric is map tasks committed
// per second, from the job's start to its last map task committed, as the
// server reports them.
func BenchmarkNoopWorkerProcesses(b *testing.B) {
	bin := tabreduceBin(b)
	tasks := max(b.N, 20_000)
	input := filepath.Join(b.TempDir(), "noop.txt")
	warm := filepath.Join(b.TempDir(), "warm.txt")
	if err := os.WriteFile(input, []byte(strings.Repeat("x\n", tasks)), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(warm, []byte(strings.Repeat("x\n", 256)), 0o644); err != nil {
		b.Fatal(err)
	}
	spec := engine.Spec{Module: "noop", ChunkSize: 1, Reducers: 1, Verify: engine.VerifyNone}
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			srv := startBroker(b, bin, b.TempDir(), "everysec")
			for i := range n {
				startWorker(b, bin, srv.url, fmt.Sprintf("w%d", i), 16)
			}
			c := apiclient.New(srv.url, "")
			waitListedN(b, c, n)
			j, err := c.SubmitJob(b.Context(), spec, apiclient.FileInput(warm))
			if err != nil {
				b.Fatal(err)
			}
			waitDone(b, srv.url, j.ID)
			b.ResetTimer()
			if j, err = c.SubmitJob(b.Context(), spec, apiclient.FileInput(input)); err != nil {
				b.Fatal(err)
			}
			st := waitDone(b, srv.url, j.ID)
			b.StopTimer()
			if st.Started == nil || st.MapDone == nil || st.Phases[engine.PhaseMap].Done != tasks {
				b.Fatalf("job %s: started %v, map done %v, %d map tasks done, want %d", j.ID, st.Started, st.MapDone, st.Phases[engine.PhaseMap].Done, tasks)
			}
			b.ReportMetric(float64(tasks)/st.MapDone.Sub(*st.Started).Seconds(), "tasks/s")
		})
	}
}
