package apiclient

import (
	"context"
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

// Cancel cancels a job and returns it; a finished job is a 409 *Error.
func (c *Client) Cancel(ctx context.Context, id string) (Job, error) {
	var job Job
	err := c.call(ctx, http.MethodDelete, jobPath(id), nil, "", http.StatusOK, &job)
	return job, err
}

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
