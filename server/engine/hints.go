package engine

import (
	"slices"
	"sort"
	"time"
)

// WantedModules returns the sha256 of at most n modules that the waiting
// work needs next: the current phase's module of the oldest unfinished
// jobs, oldest first. The volunteer page names them so that a tab that
// opens while a job waits fetches its module while its own scripts load,
// rather than after its first task arrives.
func (e *Engine) WantedModules(n int) []string {
	type want struct {
		submitted time.Time
		sha       string
	}
	var wants []want
	e.mu.Lock()
	for _, j := range e.jobs {
		switch {
		case j.rec.State == StateReducing:
			wants = append(wants, want{j.rec.Submitted, j.rec.reducer()})
		case !j.rec.State.Finished():
			wants = append(wants, want{j.rec.Submitted, j.rec.Module})
		}
	}
	e.mu.Unlock()
	sort.Slice(wants, func(a, b int) bool { return wants[a].submitted.Before(wants[b].submitted) })
	var out []string
	for _, w := range wants {
		if len(out) < n && !slices.Contains(out, w.sha) {
			out = append(out, w.sha)
		}
	}
	return out
}
