package httpapi

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/engine"
)

// jobJSON is every answer about a job: its status and where to find it.
type jobJSON struct {
	engine.Status
	URLs jobURLs `json:"urls"`
}

// jobURLs are a job's routes, relative to the server.
type jobURLs struct {
	Self   string `json:"self"`
	Output string `json:"output"`
}

func jobView(st engine.Status) jobJSON {
	self := "/api/v1/jobs/" + url.PathEscape(st.ID)
	return jobJSON{Status: st, URLs: jobURLs{Self: self, Output: self + "/output"}}
}

// listJobs is GET /api/v1/jobs: {"jobs": [...]}, newest first, and the
// records that did not load at start ("set_aside"), if any.
func (a *API) listJobs(c echo.Context) error {
	sts, err := a.engine.Jobs(c.Request().Context())
	if err != nil {
		return err
	}
	jobs := make([]jobJSON, len(sts))
	for i, st := range sts {
		jobs[i] = jobView(st)
	}
	body := map[string]any{"jobs": jobs}
	if aside := a.engine.SetAside(); len(aside) > 0 {
		body["set_aside"] = aside
	}
	return c.JSON(http.StatusOK, body)
}

// getJob is GET /api/v1/jobs/{id}.
func (a *API) getJob(c echo.Context) error {
	st, err := a.engine.Job(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, jobView(st))
}

// deleteJob is DELETE /api/v1/jobs/{id}: a running job is cancelled and
// its status returned; a finished one is deleted whole (its records,
// queues, files and output) and the answer is {"id": ..., "deleted": true}.
func (a *API) deleteJob(c echo.Context) error {
	ctx, id := c.Request().Context(), c.Param("id")
	st, err := a.engine.Cancel(ctx, id)
	if errors.Is(err, engine.ErrFinished) {
		if err := a.engine.Delete(ctx, id); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"id": id, "deleted": true})
	}
	if err != nil {
		return err
	}
	a.log.Info("job cancelled", "job", st.ID)
	return c.JSON(http.StatusOK, jobView(st))
}

// listWorkers is GET /api/v1/workers: {"workers": [...]}.
func (a *API) listWorkers(c echo.Context) error {
	ws := a.engine.Workers()
	if ws == nil {
		ws = []engine.WorkerInfo{}
	}
	return c.JSON(http.StatusOK, map[string]any{"workers": ws})
}
