package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/tabreduce/tabreduce/api"
)

// Job is the server's view of a job: its status and its routes.
type Job struct {
	api.Status
	URLs JobURLs `json:"urls"`
}

// JobURLs are a job's routes, relative to the server.
type JobURLs struct {
	Self   string `json:"self"`
	Output string `json:"output"`
}

func jobPath(id string) string { return "/api/v1/jobs/" + url.PathEscape(id) }

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var job Job
	err := c.get(ctx, jobPath(id), &job)
	return job, err
}

// Jobs returns every job, newest first.
func (c *Client) Jobs(ctx context.Context) ([]Job, error) {
	var body struct {
		Jobs []Job `json:"jobs"`
	}
	err := c.get(ctx, "/api/v1/jobs", &body)
	return body.Jobs, err
}

// Cancel cancels a running job and returns it. DELETE on a job that has
// finished deletes it instead: Cancel then returns ErrDeleted.
func (c *Client) Cancel(ctx context.Context, id string) (Job, error) {
	var job struct {
		Job
		Deleted bool `json:"deleted"`
	}
	err := c.call(ctx, http.MethodDelete, jobPath(id), nil, "", http.StatusOK, &job)
	if err == nil && job.Deleted {
		return Job{}, fmt.Errorf("%w: %s", ErrDeleted, id)
	}
	return job.Job, err
}

// ErrDeleted says a job had finished, so the DELETE meant to cancel it
// deleted it.
var ErrDeleted = errors.New("the job had finished and is deleted")

// Delete deletes a finished job whole: its records, queues, files and
// output. A job that still runs is cancelled instead, and Delete says so
// with ErrStillRunning: delete it again once it is.
func (c *Client) Delete(ctx context.Context, id string) error {
	_, err := c.Cancel(ctx, id)
	switch {
	case errors.Is(err, ErrDeleted):
		return nil
	case err == nil:
		return fmt.Errorf("%w: %s is cancelled now", ErrStillRunning, id)
	}
	return err
}

// ErrStillRunning says Delete found the job running and cancelled it.
var ErrStillRunning = errors.New("the job was still running")

// Output streams a done job's output pairs sorted by key: format "ndjson"
// (the default when "") or "tsv". The caller closes it. A job without
// output yet is a 409 *Error. Should the server fail part-way, reading
// fails rather than ending early.
func (c *Client) Output(ctx context.Context, id, format string) (io.ReadCloser, error) {
	path := jobPath(id) + "/output"
	if format != "" {
		path += "?format=" + url.QueryEscape(format)
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil, "", http.StatusOK)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// WaitJob polls a job every interval until it has finished (done, failed
// or cancelled) and returns it. progress, if not nil, sees every poll.
func (c *Client) WaitJob(ctx context.Context, id string, interval time.Duration, progress func(Job)) (Job, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		job, err := c.Job(ctx, id)
		if err != nil {
			return job, err
		}
		if progress != nil {
			progress(job)
		}
		if job.State.Finished() {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-t.C:
		}
	}
}
