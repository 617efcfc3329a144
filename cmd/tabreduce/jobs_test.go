package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func doneJob() apiclient.Job {
	st := status(engine.StateDone, 10, 10, 4, 4)
	st.Spec.Module, st.ModuleSHA = "wordcount", sha
	st.BytesIn, st.BytesOut, st.Records = 12_345_678, 2_000, 345
	st.Counters = map[string]int64{"words": 6, "lines": 3}
	st.Started, st.MapDone, st.Finished, st.OutputQueue = at(time.Second), at(40*time.Second), at(61*time.Second), "counts"
	return apiclient.Job{Status: st}
}

func TestJobsTable(t *testing.T) {
	running := status(engine.StateMapping, 3, 10, 0, 4)
	running.ID, running.Spec.Module, running.ModuleSHA, running.BytesIn = "j2", sha, sha, 999
	var out bytes.Buffer
	if err := writeJobsTable(&out, []apiclient.Job{{Status: running}, doneJob()}, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID  STATE    MODULE        MAP    REDUCE  INPUT    RECORDS  AGE\n" +
		"j2  mapping  0123456789ab  3/10   0/4     999 B    0        5m\n" +
		"j1  done     wordcount     10/10  4/4     12.3 MB  345      5m\n"
	if out.String() != want {
		t.Errorf("want\n%s\ngot\n%s", want, out.String())
	}
}

func TestJobDetail(t *testing.T) {
	failed := status(engine.StateFailed, 2, 10, 0, 4)
	failed.Phases[engine.PhaseMap] = engine.PhaseCounts{Total: 10, Done: 2, Running: 1, Pending: 3, Failed: 4}
	failed.Spec.Module, failed.ModuleSHA, failed.Error = sha, sha, "task j1/map/3: trap\nat line 2"
	failed.Finished = at(time.Minute)
	streaming := status(engine.StateMapping, 7, 7, 0, 0)
	streaming.Spec = engine.Spec{Module: "grep", InputQueue: "lines", Stream: true}
	tests := []struct {
		name string
		job  apiclient.Job
		want []string
	}{
		{"done", doneJob(), []string{
			"job        j1",
			"state      done",
			"module     wordcount (sha256 0123456789ab)",
			"map        10/10 done, 0 running, 0 pending",
			"reduce     4/4 done, 0 running, 0 pending",
			"input      12.3 MB",
			"output     345 records, 2.0 kB (also posted to queue counts)",
			"counters   lines=3 words=6",
			"submitted  2026-03-01 12:00:00 (2m ago)",
			"started    2026-03-01 12:00:01 (1m59s ago)",
			"map done   2026-03-01 12:00:40 (1m20s ago)",
			"finished   2026-03-01 12:01:01 (59s ago)",
			"took       1m1s",
			"get it     tabreduce output j1",
		}},
		{"failed", apiclient.Job{Status: failed}, []string{
			"module     0123456789ab (sha256 0123456789ab)",
			"map        2/10 done, 1 running, 3 pending, 4 failed attempts",
			"error      task j1/map/3: trap; at line 2",
		}},
		{"streaming", apiclient.Job{Status: streaming}, []string{"input      queue lines, streaming"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeJobDetail(&out, tt.job, t0.Add(2*time.Minute), &clientFlags{server: defaultServer, env: testEnv(nil)}); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(out.String(), "\n")
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w+"\n") {
					t.Errorf("want the line %q in\n%s", w, out.String())
				}
			}
			if tt.name == "done" && len(lines) != len(tt.want)+1 {
				t.Errorf("want %d lines, got\n%s", len(tt.want), out.String())
			}
		})
	}
}
