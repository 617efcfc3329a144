package server_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/engine"
)

// jobTraces returns what the store and the data directory still hold of a
// job: its internal queues, its records, its directory.
func jobTraces(t *testing.T, s *testServer, id string) (queues, records []string, dir bool) {
	t.Helper()
	ctx := context.Background()
	h := s.Broker().Internal()
	for _, q := range []string{"job/" + id + "/map", "job/" + id + "/reduce", "job/" + id + "/out", "job/" + id + "/part/0", "job/" + id + "/map.dead"} {
		if _, err := h.Stats(ctx, q); err == nil {
			queues = append(queues, q)
		} else if !errors.Is(err, broker.ErrQueueNotFound) {
			t.Fatal(err)
		}
	}
	for _, prefix := range []string{"job/" + id, "jobtask/" + id + "/"} {
		recs, err := h.RecordScan(ctx, broker.RecordScanParams{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			records = append(records, r.Key)
		}
	}
	_, err := os.Stat(filepath.Join(s.cfg.DataDir, "jobs", id))
	return queues, records, err == nil
}

// DELETE cancels a running job and deletes a finished one whole: records,
// queues, files and output.
func TestDeleteJob(t *testing.T) {
	s := startServer(t, server.Config{LocalWorkers: 1})
	j := s.submit(field("module", "wordcount"), field("reducers", "1"), inputFile("in.txt", corpus(20_000, 4)))
	s.waitJob(j.ID)
	if q, recs, dir := jobTraces(t, s, j.ID); len(q) == 0 || len(recs) == 0 || !dir {
		t.Fatalf("a done job holds queues %q, records %q, directory %v; want its output queue, records and directory", q, recs, dir)
	}
	r := decode[map[string]any](t, s.do(http.MethodDelete, j.URLs.Self, nil).want(t, http.StatusOK))
	if r["deleted"] != true || r["id"] != j.ID {
		t.Errorf("DELETE a done job: %v, want deleted", r)
	}
	s.get(j.URLs.Self).wantError(t, http.StatusNotFound, "job not found")
	s.get(j.URLs.Output).wantError(t, http.StatusNotFound, "job not found")
	if q, recs, dir := jobTraces(t, s, j.ID); len(q) > 0 || len(recs) > 0 || dir {
		t.Errorf("a deleted job left queues %q, records %q, directory %v", q, recs, dir)
	}
	s.do(http.MethodDelete, j.URLs.Self, nil).wantError(t, http.StatusNotFound, "job not found")
	// And it stays deleted after a restart.
	s = s.restart()
	s.get(j.URLs.Self).wantError(t, http.StatusNotFound, "job not found")
}

// A running job is cancelled by the first DELETE and deleted by the next.
func TestDeleteRunningJobCancelsFirst(t *testing.T) {
	s := startServer(t, server.Config{})
	j := s.submit(field("module", "wordcount"), inputFile("in.txt", "a b\n"))
	c := decode[jobReply](t, s.do(http.MethodDelete, j.URLs.Self, nil).want(t, http.StatusOK))
	if c.State != engine.StateCancelled {
		t.Fatalf("DELETE a queued job: state %s, want cancelled", c.State)
	}
	if err := s.Engine().Delete(context.Background(), "nosuchjob"); !errors.Is(err, engine.ErrJobNotFound) {
		t.Errorf("Delete of an unknown job: %v", err)
	}
	s.do(http.MethodDelete, j.URLs.Self, nil).want(t, http.StatusOK)
	s.get(j.URLs.Self).wantError(t, http.StatusNotFound, "job not found")
}

// A finished job is deleted once its retention has passed; a running one
// is kept whatever its age.
func TestJobRetention(t *testing.T) {
	s := startServer(t, server.Config{LocalWorkers: 1, JobRetention: 300 * time.Millisecond})
	done := s.submit(field("module", "wordcount"), inputFile("in.txt", "a b a\n"))
	s.waitJob(done.ID)
	waiting := s.submit(field("module", "wordcount"), field("input_queue", "never"), field("output_queue", "out"), field("stream", "true"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.get(done.URLs.Self)
		if r.Status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a finished job was still there 20 s after its 300 ms retention: %s", r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The job leaves the listing first and its record last: wait for that.
	for {
		q, recs, dir := jobTraces(t, s, done.ID)
		if len(q) == 0 && len(recs) == 0 && !dir {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retention left queues %q, records %q, directory %v", q, recs, dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := decode[jobReply](t, s.get(waiting.URLs.Self).want(t, http.StatusOK)); st.State.Finished() {
		t.Errorf("a streaming job is %s, want it still running", st.State)
	}
}
