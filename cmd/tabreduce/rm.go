package main

import (
	"context"
	"fmt"
)

func init() {
	register("rm", "[flags] JOBID", "delete a finished job: its records, files and output", rmJob)
}

// rmJob is `tabreduce rm ID`: it deletes a finished job and refuses one
// that still runs (cancel it first), so that it never cancels by surprise.
func rmJob(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("rm", env)
	cf := addClientFlags(fs, env)
	id, err := parseJobID(fs, args, env)
	if err != nil {
		return err
	}
	if err := cf.resolve(); err != nil {
		return err
	}
	c := cf.client()
	job, err := c.Job(ctx, id)
	if err != nil {
		return err
	}
	if !job.State.Finished() {
		return fmt.Errorf("job %s is %s: cancel it first (tabreduce cancel %s)", id, job.State, id)
	}
	if err := c.Delete(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "job %s deleted\n", id)
	return nil
}
