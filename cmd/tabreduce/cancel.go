package main

import (
	"context"
	"fmt"
)

func init() {
	register("cancel", "[flags] JOBID", "cancel a job", cancelJob)
}

// cancelJob is `tabreduce cancel ID`. It refuses a job that has finished:
// the server's DELETE would delete it, and that is rm's.
func cancelJob(ctx context.Context, args []string, env *cliEnv) error {
	c, job, err := lookUpJob(ctx, "cancel", args, env)
	if err != nil {
		return err
	}
	if job.State.Finished() {
		return fmt.Errorf("job %s has already finished (%s); tabreduce rm %s deletes it", job.ID, job.State, job.ID)
	}
	if job, err = c.Cancel(ctx, job.ID); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "job %s %s\n", job.ID, job.State)
	return nil
}
