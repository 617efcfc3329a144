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
	c := cf.client()
	// DELETE deletes a job that has finished: look first, so that cancel
	// never deletes by surprise (that is rm's).
	if job, err := c.Job(ctx, id); err != nil {
		return err
	} else if job.State.Finished() {
		return fmt.Errorf("job %s has already finished (%s); tabreduce rm %s deletes it", id, job.State, id)
	}
	job, err := c.Cancel(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "job %s %s\n", job.ID, job.State)
	return nil
}
