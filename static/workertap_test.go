package static_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/wasm/worker"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// workerTap stands between workers and a server: it proxies every HTTP
// request to the server and relays /api/v1/ws/worker frame by frame, reading the
// TASKS the server sends and the RESULTS workers return, so that a test can
// compare the canonical result hash (worker.ResultHash) of every task
// without any hook in the server or the page. Workers (native ones, and
// tabs opened on its URL) connect to URL instead of the server's.
type workerTap struct {
	URL string

	upstream string // the server's ws://…/api/v1/ws/worker
	ctx      context.Context
	mu       sync.Mutex
	tasks    map[uint64]tapTask           // task id → its job and name
	hashes   map[string]map[string]string // job → task name → result hash (hex)
	results  map[string]int               // job → results seen
	reruns   []string                     // tasks whose runs hashed differently
}

type tapTask struct{ job, name string }

// startWorkerTap starts a tap in front of the server at serverURL; it
// closes, ending the sessions it relays, when the test ends.
func startWorkerTap(t testing.TB, serverURL string) *workerTap {
	t.Helper()
	target, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tap := &workerTap{
		upstream: "ws://" + target.Host + "/api/v1/ws/worker",
		ctx:      ctx,
		tasks:    map[uint64]tapTask{},
		hashes:   map[string]map[string]string{},
		results:  map[string]int{},
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/ws/worker" {
			tap.relay(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	tap.URL = hs.URL
	t.Cleanup(func() { cancel(); hs.Close() })
	return tap
}

// taskName names a task the same way on every server: its phase, its
// offset in the input and a digest of its input. Job ids differ between
// servers; the input of a task does not, unless an earlier task's output
// did (and then that task's hash differs too). Tasks with the same input
// (reduce tasks of empty partitions) share a name, as they must share a
// result.
func taskName(tk *workerproto.Task) string {
	sum := sha256.Sum256(tk.Input)
	return fmt.Sprintf("%s@%d:%x", tk.Phase, tk.Offset, sum[:6])
}

// relay accepts a worker's WebSocket, dials the server's on its behalf and
// copies frames both ways until either side ends.
func (tap *workerTap) relay(w http.ResponseWriter, r *http.Request) {
	down, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(tap.ctx)
	defer cancel()
	up, _, err := websocket.Dial(ctx, tap.upstream, &websocket.DialOptions{
		HTTPHeader: http.Header{"User-Agent": {r.UserAgent()}},
	})
	if err != nil {
		down.Close(websocket.StatusInternalError, "tap: "+err.Error())
		return
	}
	for _, c := range []*websocket.Conn{down, up} {
		c.SetReadLimit(workerproto.DefaultMaxFrameBytes)
	}
	done := make(chan struct{}, 2)
	copyFrames := func(from, to *websocket.Conn) {
		defer func() { done <- struct{}{} }()
		for {
			typ, b, err := from.Read(ctx)
			if err != nil {
				return
			}
			tap.see(b)
			if err := to.Write(ctx, typ, b); err != nil {
				return
			}
		}
	}
	go copyFrames(down, up)
	go copyFrames(up, down)
	<-done
	cancel()
	<-done
	down.CloseNow()
	up.CloseNow()
}

// see records what a frame says about tasks: TASKS name them, RESULTS
// give their hashes. Frames it cannot decode pass through unread.
func (tap *workerTap) see(frame []byte) {
	f, err := workerproto.Decode(frame)
	if err != nil {
		return
	}
	tap.mu.Lock()
	defer tap.mu.Unlock()
	switch f := f.(type) {
	case *workerproto.Tasks:
		for i := range f.Tasks {
			tk := &f.Tasks[i]
			tap.tasks[tk.ID] = tapTask{job: tk.Job, name: taskName(tk)}
		}
	case *workerproto.Results:
		for _, res := range f.Results {
			tk, ok := tap.tasks[res.TaskID]
			if !ok {
				continue
			}
			h := worker.ResultHash(res)
			sum := hex.EncodeToString(h[:])
			m := tap.hashes[tk.job]
			if m == nil {
				m = map[string]string{}
				tap.hashes[tk.job] = m
			}
			if old, ok := m[tk.name]; ok && old != sum {
				tap.reruns = append(tap.reruns, fmt.Sprintf("job %s task %s: %s, then %s", tk.job, tk.name, old, sum))
			}
			m[tk.name] = sum
			tap.results[tk.job]++
		}
	}
}

// jobHashes returns the result hash of each task of the job, by task name,
// how many results it saw (a task may run more than once) and the tasks
// that ran more than once with different results.
func (tap *workerTap) jobHashes(job string) (hashes map[string]string, results int, reruns []string) {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	for _, r := range tap.reruns {
		if strings.HasPrefix(r, "job "+job+" ") {
			reruns = append(reruns, r)
		}
	}
	return maps.Clone(tap.hashes[job]), tap.results[job], reruns
}
