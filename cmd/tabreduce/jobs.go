package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

func init() {
	register("jobs", "[flags]", "list a server's jobs, newest first", listJobs)
}

// listJobs is `tabreduce jobs`.
func listJobs(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("jobs", env)
	cf := addClientFlags(fs, env)
	asJSON := fs.Bool("json", false, "print the jobs as JSON")
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := cf.resolve(); err != nil {
		return err
	}
	jobs, err := cf.client().Jobs(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.stdout, jobs)
	}
	return writeJobsTable(env.stdout, jobs, time.Now())
}

// writeJobsTable writes one line a job under a header.
func writeJobsTable(w io.Writer, jobs []apiclient.Job, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tMODULE\tMAP\tREDUCE\tINPUT\tRECORDS\tAGE")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", j.ID, j.State, moduleLabel(j.Status),
			phaseFraction(j.Phases[engine.PhaseMap]), phaseFraction(j.Phases[engine.PhaseReduce]),
			humanBytes(j.BytesIn), j.Records, shortDuration(now.Sub(j.Submitted)))
	}
	return tw.Flush()
}

// phaseFraction is a phase's tasks done of all: "3/10".
func phaseFraction(pc engine.PhaseCounts) string {
	return fmt.Sprintf("%d/%d", pc.Done, pc.Total)
}
