package main

import (
	"context"
	"fmt"
	"io"
)

func init() {
	register("output", "[flags] JOBID", "print a done job's output, key<TAB>value lines sorted by key", printOutput)
}

// printOutput is `tabreduce output ID`: the lines are those `tabreduce run`
// prints for the same job and input.
func printOutput(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("output", env)
	cf := addClientFlags(fs, env)
	format := fs.String("format", "tsv", "tsv (key<TAB>value lines, escaped as tabreduce run prints them) or ndjson")
	id, err := parseJobID(fs, args, env)
	if err != nil {
		return err
	}
	if *format != "tsv" && *format != "ndjson" {
		return usagef("--format %q: want tsv or ndjson", *format)
	}
	if err := cf.resolve(); err != nil {
		return err
	}
	out, err := cf.client().Output(ctx, id, *format)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(env.stdout, out); err != nil {
		return fmt.Errorf("job %s output: %w", id, err)
	}
	return nil
}
