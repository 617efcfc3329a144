package main

import (
	"context"
	"fmt"

	"github.com/tabreduce/tabreduce/server/apiclient"
)

func init() {
	register("rm", "[flags] JOBID", "delete a finished job: its records, files and output", rmJob)
}

// lookUpJob parses a job command's flags and its one job id, and returns a
// client and the job as the server has it now. cancel and rm look first:
// the server's DELETE cancels a running job and deletes a finished one,
// and each command does only its own half.
func lookUpJob(ctx context.Context, name string, args []string, env *cliEnv) (*apiclient.Client, apiclient.Job, error) {
	fs := newFlagSet(name, env)
	cf := addClientFlags(fs, env)
	id, err := parseJobID(fs, args, env)
	if err != nil {
		return nil, apiclient.Job{}, err
	}
	if err := cf.resolve(); err != nil {
		return nil, apiclient.Job{}, err
	}
	c := cf.client()
	job, err := c.Job(ctx, id)
	return c, job, err
}

// rmJob is `tabreduce rm ID`: it deletes a finished job and refuses one
// that still runs (cancel it first).
func rmJob(ctx context.Context, args []string, env *cliEnv) error {
	c, job, err := lookUpJob(ctx, "rm", args, env)
	if err != nil {
		return err
	}
	if !job.State.Finished() {
		return fmt.Errorf("job %s is %s: cancel it first (tabreduce cancel %s)", job.ID, job.State, job.ID)
	}
	if err := c.Delete(ctx, job.ID); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "job %s deleted\n", job.ID)
	return nil
}
