package redisstore_test

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/broker/storetest"
	"github.com/tabreduce/tabreduce/server/redisstore"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
)

// One redis-server and one three-master cluster serve the package's
// tests; each store gets a key prefix of its own, so stores never see
// one another's data.
var shared struct {
	mu      sync.Mutex
	server  *redistest.Server
	cluster *redistest.Cluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.server != nil {
		shared.server.Close()
	}
	if shared.cluster != nil {
		shared.cluster.Close()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

func redisServer(t testing.TB) *redistest.Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.server == nil {
		s, err := redistest.Start("", redistest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		shared.server = s
	}
	return shared.server
}

func redisCluster(t testing.TB) *redistest.Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster == nil {
		c, err := redistest.StartCluster("", 3)
		if err != nil {
			t.Fatal(err)
		}
		shared.cluster = c
	}
	return shared.cluster
}

var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("t%d", prefixes.Add(1)) }

func open(t testing.TB, url string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), url, redisstore.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := redisServer(t)
	// A reopen restarts redis-server too: what the store acknowledged
	// must come back from Redis's append-only file.
	storetest.Run(t, harness(srv.URL, func(t *testing.T) {
		if err := srv.Restart(false); err != nil {
			t.Fatal(err)
		}
	}))
}

func TestConformanceCluster(t *testing.T) {
	storetest.Run(t, harness(redisCluster(t).URL, func(*testing.T) {}))
}

// harness opens each case's store under a prefix of its own; a reopen
// closes it, calls restart and opens the same prefix again.
func harness(url func(prefix string) string, restart func(t *testing.T)) storetest.Harness {
	return storetest.Harness{
		New: func(t *testing.T) broker.Store { return open(t, url(newPrefix())) },
		Reopen: func(t *testing.T, s broker.Store) broker.Store {
			prefix := s.(*redisstore.Store).Prefix()
			if err := s.Close(); err != nil {
				t.Fatalf("close before reopening: %v", err)
			}
			restart(t)
			return open(t, url(prefix))
		},
	}
}
