package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

func init() {
	register("job", "[flags] JOBID", "show one job's status", showJob)
}

// showJob is `tabreduce job ID`.
func showJob(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("job", env)
	cf := addClientFlags(fs, env)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	id, err := parseJobID(fs, args, env)
	if err != nil {
		return err
	}
	if err := cf.resolve(); err != nil {
		return err
	}
	job, err := cf.client().Job(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.stdout, job)
	}
	return writeJobDetail(env.stdout, job, time.Now(), cf)
}

// writeJobDetail writes a job's status as labelled lines.
func writeJobDetail(w io.Writer, j apiclient.Job, now time.Time, cf *clientFlags) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{label}, args...)...)
	}
	line("job", "%s", j.ID)
	line("state", "%s", j.State)
	line("module", "%s (sha256 %s)", moduleLabel(j.Status), shortSHA(j.ModuleSHA))
	line("map", "%s", phaseDetail(j.Phases[engine.PhaseMap]))
	line("reduce", "%s", phaseDetail(j.Phases[engine.PhaseReduce]))
	switch {
	case j.Spec.Stream:
		line("input", "queue %s, streaming", j.Spec.InputQueue)
	case j.Spec.InputQueue != "":
		line("input", "queue %s, %s", j.Spec.InputQueue, humanBytes(j.BytesIn))
	default:
		line("input", "%s", humanBytes(j.BytesIn))
	}
	if j.OutputQueue != "" {
		line("output", "%d records, %s (also posted to queue %s)", j.Records, humanBytes(j.BytesOut), j.OutputQueue)
	} else {
		line("output", "%d records, %s", j.Records, humanBytes(j.BytesOut))
	}
	if len(j.Counters) > 0 {
		line("counters", "%s", counterList(j.Counters))
	}
	line("submitted", "%s", timeAgo(j.Submitted, now))
	for _, t := range []struct {
		label string
		at    *time.Time
	}{{"started", j.Started}, {"map done", j.MapDone}, {"finished", j.Finished}} {
		if t.at != nil {
			line(t.label, "%s", timeAgo(*t.at, now))
		}
	}
	if j.Finished != nil {
		line("took", "%s", shortDuration(j.Finished.Sub(j.Submitted)))
	}
	if j.Error != "" {
		line("error", "%s", oneLine(j.Error))
	}
	if j.State == engine.StateDone {
		line("get it", "%s", cf.command("output", j.ID))
	}
	return tw.Flush()
}

// phaseDetail is "3/10 done, 2 running, 5 pending, 1 failed attempt".
func phaseDetail(pc engine.PhaseCounts) string {
	s := fmt.Sprintf("%d/%d done, %d running, %d pending", pc.Done, pc.Total, pc.Running, pc.Pending)
	switch pc.Failed {
	case 0:
		return s
	case 1:
		return s + ", 1 failed attempt"
	}
	return fmt.Sprintf("%s, %d failed attempts", s, pc.Failed)
}

// counterList is "lines=3 words=6", sorted by name.
func counterList(cs map[string]int64) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(cs)) {
		fmt.Fprintf(&b, "%s=%d ", name, cs[name])
	}
	return strings.TrimSpace(b.String())
}

// timeAgo is a local time and how long ago it was.
func timeAgo(t, now time.Time) string {
	return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.DateTime), shortDuration(now.Sub(t)))
}
