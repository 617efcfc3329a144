package main

import (
	"context"
	"fmt"
)

func init() {
	register("cancel", "[flags] JOBID", "cancel a job", cancelJob)
}

// cancelJob is `tabreduce cancel ID`.
func cancelJob(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("cancel", env)
	cf := addClientFlags(fs, env)
	id, err := parseJobID(fs, args, env)
	if err != nil {
		return err
	}
	if err := cf.resolve(); err != nil {
		return err
	}
	job, err := cf.client().Cancel(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "job %s %s\n", job.ID, job.State)
	return nil
}
