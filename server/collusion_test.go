package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/worker"
)

// The colluder harness: pools of untrusted native workers, over real
// WebSockets, each dialing from a loopback address of its own, so that the
// server sees workers on two /24 networks (127.0.0.x and 127.0.1.x).
// Colluders are sybils of one cheat: they forge every result the same way
// (worker.Options.FaultyAgree with one seed), so any two of them agree on
// a forgery, and they sit on both networks, so the rule that replicas run
// on distinct networks does not keep them apart.

// poolMember is one worker of a pool.
type poolMember struct {
	name, addr string
	colluder   bool
	results    atomic.Int64 // results sent, every session
	cancel     context.CancelFunc
	done       chan struct{}
}

// dialFrom returns a worker Dial that connects to srv from the local
// address addr.
func dialFrom(srv *server.Server, addr string, results *atomic.Int64) func(context.Context) (worker.Transport, error) {
	return func(ctx context.Context) (worker.Transport, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
		client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		t, err := worker.DialWebSocketOptions(ctx, srv.URL(), &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			return nil, err
		}
		return &countingTransport{Transport: t, results: results}, nil
	}
}

// startMember runs one untrusted worker with one slot from addr; a
// colluder forges every result it can, as every other colluder does.
func startMember(tb testing.TB, srv *server.Server, name, addr string, colluder bool) *poolMember {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &poolMember{name: name, addr: addr, colluder: colluder, cancel: cancel, done: make(chan struct{})}
	opts := worker.Options{
		Server: srv.URL(), Dial: dialFrom(srv, addr, &m.results), Runner: wasmtest.Runner(tb), Slots: 1, Name: name,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		TrustedModules: jobs.SHAs(), Logger: slog.New(slog.DiscardHandler),
	}
	if colluder {
		opts.Faulty, opts.FaultySeed, opts.FaultyAgree = 1, 0xc011, true
	}
	go func() {
		defer close(m.done)
		_ = worker.Run(ctx, opts)
	}()
	return m
}

func (m *poolMember) stop() { m.cancel(); <-m.done }

// colluderPool starts honest and colluding workers spread over two /24
// networks and waits until all are connected.
func colluderPool(tb testing.TB, srv *server.Server, honest, colluders int) []*poolMember {
	tb.Helper()
	var ms []*poolMember
	for i := range honest {
		ms = append(ms, startMember(tb, srv, fmt.Sprintf("honest%d", i), fmt.Sprintf("127.0.%d.%d", i%2, 10+i/2), false))
	}
	for i := range colluders {
		ms = append(ms, startMember(tb, srv, fmt.Sprintf("sybil%d", i), fmt.Sprintf("127.0.%d.%d", i%2, 200+i/2), true))
	}
	tb.Cleanup(func() {
		for _, m := range ms {
			m.stop()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for connected(srv) < len(ms) {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d workers connected", connected(srv), len(ms))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ms
}

// connected counts the workers connected and not flagged.
func connected(srv *server.Server) int {
	n := 0
	for _, w := range srv.Engine().Workers() {
		if !w.Flagged {
			n++
		}
	}
	return n
}

// flaggedNames are the names of the workers flagged so far.
func flaggedNames(srv *server.Server) map[string]bool {
	out := map[string]bool{}
	for _, w := range srv.Engine().Workers() {
		if w.Flagged {
			out[w.Name] = true
		}
	}
	return out
}

// Colluders cannot make a replicated job's output wrong, and adaptive
// catches them too: two sybils on two /24s that forge every result alike,
// among eight honest workers. Every colluder ends flagged and no honest
// worker does; under replicate every job's output equals the oracle.
func TestColludersAgainstVerification(t *testing.T) {
	for _, mode := range []engine.Verify{engine.VerifyReplicate, engine.VerifyAdaptive} {
		t.Run(string(mode), func(t *testing.T) {
			srv := startServer(t, server.Config{})
			ms := colluderPool(t, srv.Server, 8, 2)
			for i := range 3 {
				text := corpus(60_000, uint64(20+i))
				st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 2 << 10, Reducers: 2, Verify: mode}, text)
				if st.State != engine.StateDone {
					t.Fatalf("job %d: state %s, error %q", i, st.State, st.Error)
				}
				got, _ := jobOutput(t, srv.Engine(), st.ID)
				if !maps.Equal(got, wordcountOracle(text)) && mode == engine.VerifyReplicate {
					t.Errorf("job %d: output differs from the oracle; verification %+v", i, st.Verification)
				}
			}
			flagged := flaggedNames(srv.Server)
			for _, m := range ms {
				if m.colluder && !flagged[m.name] {
					t.Errorf("colluder %s (%s) not flagged", m.name, m.addr)
				}
				if !m.colluder && flagged[m.name] {
					t.Errorf("honest worker %s (%s) flagged", m.name, m.addr)
				}
			}
		})
	}
}

// A trusted worker outranks any number of untrusted workers that agree on
// something else, and is never flagged for disagreeing with them: here the
// server's own in-process worker and two colluders on two networks, under
// replicate; the output is the oracle's.
func TestTrustedWorkerOutranksColluders(t *testing.T) {
	srv := startServer(t, server.Config{LocalWorkers: 1})
	colluderPool(t, srv.Server, 0, 2)
	text := corpus(40_000, 31)
	st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 2 << 10, Reducers: 2, Verify: engine.VerifyReplicate}, text)
	if st.State != engine.StateDone {
		t.Fatalf("state %s, error %q", st.State, st.Error)
	}
	if got, _ := jobOutput(t, srv.Engine(), st.ID); !maps.Equal(got, wordcountOracle(text)) {
		t.Errorf("output differs from the oracle; verification %+v", st.Verification)
	}
	for _, w := range srv.Engine().Workers() {
		if w.Trusted && w.Flagged {
			t.Errorf("trusted worker %s flagged", w.ID)
		}
	}
	// A colluder whose forgery met the trusted worker is caught; its
	// partner is caught too only if one of its own forgeries meets a
	// trusted worker or the server (a partner that agreed is not flagged
	// for the agreement alone: docs/SECURITY.md).
	if len(flaggedNames(srv.Server)) == 0 {
		t.Errorf("no colluder flagged; verification %+v", st.Verification)
	}
}

// A cheat cannot come back under another name: the first time it is
// caught its network is tainted, so a renamed cheat has every result
// checked and is caught at once; the second time its address is refused
// whatever a worker there calls itself, while a neighbour on another
// address still connects.
func TestBanHoldsAgainstRenames(t *testing.T) {
	srv := startServer(t, server.Config{})
	colluderPool(t, srv.Server, 3, 0)
	const addr = "127.0.0.77"
	for i, name := range []string{"cheat", "renamed"} {
		cheat := startMember(t, srv.Server, name, addr, true)
		eventually(t, name+" connects", func() bool { return connected(srv.Server) == 4 })
		text := corpus(60_000, uint64(41+i))
		st := runJob(t, srv.Engine(), engine.Spec{Module: "wordcount", ChunkSize: 2 << 10, Reducers: 1, Verify: engine.VerifyAdaptive}, text)
		if st.State != engine.StateDone {
			t.Fatalf("%s: state %s, error %q", name, st.State, st.Error)
		}
		if got, _ := jobOutput(t, srv.Engine(), st.ID); !maps.Equal(got, wordcountOracle(text)) {
			t.Errorf("%s: output differs from the oracle; verification %+v", name, st.Verification)
		}
		if !flaggedNames(srv.Server)[name] {
			t.Fatalf("%s was not flagged; verification %+v", name, st.Verification)
		}
		cheat.stop()
	}
	again := startMember(t, srv.Server, "innocent", addr, false)
	t.Cleanup(again.stop)
	neighbour := startMember(t, srv.Server, "neighbour", "127.0.0.78", false)
	t.Cleanup(neighbour.stop)
	eventually(t, "the neighbour connects", func() bool {
		for _, w := range srv.Engine().Workers() {
			if w.Name == "neighbour" && !w.Flagged {
				return true
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond) // the third name has redialled by now (backoff ≤ 200 ms)
	for _, w := range srv.Engine().Workers() {
		if w.Name == "innocent" {
			t.Fatalf("a worker of the twice-caught address came back under another name: %+v", w)
		}
	}
}
