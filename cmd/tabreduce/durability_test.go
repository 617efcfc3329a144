package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// The durability tests run the real binary as a subprocess, kill it and
// start it again on the same data directory.

// Bounds of the durability tests.
const (
	durQueue    = "durable"
	pushClients = 8
)

// TestDurability builds the binary once and runs each crash scenario
// against it, in parallel.
func TestDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := tabreduceBin(t)
	t.Run("fsync always, kill -9 mid-stream", func(t *testing.T) { t.Parallel(); testKillAlways(t, bin) })
	t.Run("fsync everysec, kill -9", func(t *testing.T) { t.Parallel(); testKillEverySec(t, bin) })
	t.Run("SIGTERM", func(t *testing.T) { t.Parallel(); testSigterm(t, bin) })
}

// testKillAlways pushes with several clients while another leases and acks,
// kills the server with SIGKILL mid-stream and checks the queue after a
// restart: every acknowledged push is there once, leased-but-unacked
// messages are handed out again, acked ones are gone, ids keep increasing.
func testKillAlways(t *testing.T, bin string) {
	const total, killAt = 2000, 1500
	dir := t.TempDir()
	p := startBroker(t, bin, dir, "always")
	led := newLedger()
	leases := &leaseLedger{held: map[string]bool{}, acked: map[string]bool{}}
	stop := make(chan struct{})
	var leaseDone sync.WaitGroup
	leaseDone.Add(1)
	go func() { defer leaseDone.Done(); leaseAndAck(p.url, leases, stop) }()
	var once sync.Once
	led.push(p.url, total, func(acked int) {
		if acked >= killAt {
			once.Do(func() { p.kill(t) })
		}
	})
	close(stop)
	leaseDone.Wait()
	p.kill(t) // in case the pushes ended first
	if n := len(led.acked); n < killAt {
		t.Fatalf("%d pushes acknowledged before the kill, want at least %d", n, killAt)
	}
	if len(leases.held) == 0 || len(leases.acked) == 0 {
		t.Fatalf("leased and kept %d, acked %d before the kill; want some of each", len(leases.held), len(leases.acked))
	}

	p = startBroker(t, bin, dir, "always")
	got := drain(t, p.url, total+10)
	checkOnce(t, got, led)
	for v, key := range led.ackedKeys() {
		_, present := got[v]
		switch {
		case leases.acked[v] && present:
			t.Errorf("%s (%s) was acked via its lease but is back after the restart; want it gone", v, key)
		case !leases.acked[v] && !leases.uncertain(v) && !present:
			t.Errorf("acknowledged push %s (%s) is missing after the restart; want it there once", v, key)
		}
	}
	for v := range leases.held {
		if _, ok := got[v]; !ok {
			t.Errorf("%s was leased and not acked before the kill but not handed out again; want it in the queue", v)
		}
	}
	checkIDsIncrease(t, p.url, got, led)
	t.Logf("fsync always: %d pushes acknowledged, %d leased and kept, %d acked via lease, %d drained after kill -9",
		len(led.acked), len(leases.held), len(leases.acked), len(got))
}

// testKillEverySec pushes for a while with --fsync everysec, kills the
// server at once and checks that every push acknowledged more than 1.5 s
// before the kill survived, and none twice.
func testKillEverySec(t *testing.T, bin string) {
	// Paced to at most pushClients/pace pushes a second, so the kill lands
	// mid-stream and the drain stays short.
	const total, pushFor, grace = 10000, 2500 * time.Millisecond, 1500 * time.Millisecond
	dir := t.TempDir()
	p := startBroker(t, bin, dir, "everysec")
	led := newLedger()
	led.pace = 3 * time.Millisecond
	start := time.Now()
	var once sync.Once
	var killedAt time.Time
	led.push(p.url, total, func(int) {
		if time.Since(start) >= pushFor {
			once.Do(func() { killedAt = time.Now(); p.kill(t) })
		}
	})
	if killedAt.IsZero() { // every push was done before pushFor: kill right after them
		killedAt = time.Now()
		p.kill(t)
	}

	p = startBroker(t, bin, dir, "everysec")
	got := drain(t, p.url, total+10)
	checkOnce(t, got, led)
	lost, old := 0, 0
	for v, a := range led.acked {
		if _, ok := got[v]; ok {
			continue
		}
		lost++
		if killedAt.Sub(a.at) > grace {
			old++
			t.Errorf("push %s (%s) acknowledged %v before the kill is missing; want at most the last %v lost",
				v, a.key, killedAt.Sub(a.at).Round(time.Millisecond), grace)
		}
	}
	t.Logf("fsync everysec: %d pushes acknowledged in %v, %d lost by kill -9 (%d older than %v)",
		len(led.acked), killedAt.Sub(start).Round(time.Millisecond), lost, old, grace)
}

// testSigterm checks a graceful stop: with a COMET consumer connected, the
// process exits 0 promptly on SIGTERM and a restart finds every message,
// including those leased and not acked.
func testSigterm(t *testing.T, bin string) {
	const total = 300
	dir := t.TempDir()
	p := startBroker(t, bin, dir, "everysec")
	led := newLedger()
	led.push(p.url, total, nil)
	if len(led.acked) != total {
		t.Fatalf("%d of %d pushes acknowledged, want all", len(led.acked), total)
	}
	leased := leaseN(t, p.url, 10)
	stream := openStream(t, p.url+"/c/idle")
	defer stream.Close()

	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	code := p.wait(t)
	if took := time.Since(sent); code != 0 || took > 3*time.Second {
		t.Fatalf("after SIGTERM: exit code %d after %v, want 0 within 3s; stderr:\n%s", code, took, p.stderr.String())
	}

	p = startBroker(t, bin, dir, "everysec")
	got := drain(t, p.url, total+10)
	checkOnce(t, got, led)
	if len(got) != total {
		t.Errorf("after SIGTERM and restart: %d messages, want %d", len(got), total)
	}
	for _, v := range leased {
		if _, ok := got[v]; !ok {
			t.Errorf("%s was leased before SIGTERM but is not handed out after the restart", v)
		}
	}
	checkIDsIncrease(t, p.url, got, led)
}

// client side

// pushAck is one acknowledged push.
type pushAck struct {
	key string
	at  time.Time
}

// ledger records what the pushing clients sent and what the server
// acknowledged, by message value (each value is unique).
type ledger struct {
	pace  time.Duration // each client's pause between pushes
	mu    sync.Mutex
	tried map[string]bool
	acked map[string]pushAck
}

func newLedger() *ledger {
	return &ledger{tried: map[string]bool{}, acked: map[string]pushAck{}}
}

// push runs pushClients clients until total pushes have been tried or a
// push fails (the server is gone). onAck, if set, gets the number of
// acknowledged pushes after each one.
func (l *ledger) push(base string, total int, onAck func(acked int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for c := range pushClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(total); i = next.Add(1) {
				time.Sleep(l.pace)
				v := fmt.Sprintf("m%d-c%d", i, c)
				l.mu.Lock()
				l.tried[v] = true
				l.mu.Unlock()
				st, body, err := call(http.MethodPost, base+"/q/"+durQueue, "text/plain", []byte(v))
				if err != nil || st != http.StatusOK {
					return
				}
				l.mu.Lock()
				l.acked[v] = pushAck{key: strings.TrimSuffix(string(body), "\r\n"), at: time.Now()}
				n := len(l.acked)
				l.mu.Unlock()
				if onAck != nil {
					onAck(n)
				}
			}
		}()
	}
	wg.Wait()
}

// ackedKeys is a copy of value → key of the acknowledged pushes.
func (l *ledger) ackedKeys() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.acked))
	for v, a := range l.acked {
		out[v] = a.key
	}
	return out
}

// leaseLedger records messages leased and kept, and leased and acked; an
// ack whose answer was lost counts as neither.
type leaseLedger struct {
	held, acked map[string]bool
	inFlight    []string // the values of the ack in progress when the server died
}

func (l *leaseLedger) uncertain(v string) bool {
	for _, u := range l.inFlight {
		if u == v {
			return true
		}
	}
	return false
}

type leasedMessage struct {
	Lease string `json:"lease"`
	Value string `json:"value"`
}

// lease takes up to n messages with a long visibility, so none comes back
// by itself while the test runs.
func lease(base string, n int) ([]leasedMessage, error) {
	body := fmt.Sprintf(`{"n":%d,"visibility":600}`, n)
	st, b, err := call(http.MethodPost, base+"/api/v1/queues/"+durQueue+"/lease", "application/json", []byte(body))
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("lease: status %d %s", st, b)
	}
	var out struct{ Messages []leasedMessage }
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("lease: %v in %s", err, b)
	}
	return out.Messages, nil
}

// leaseAndAck leases a few messages at a time while the pushes run, keeps
// half and acks the rest, until stop or the server dies (at most 60
// rounds).
func leaseAndAck(base string, l *leaseLedger, stop <-chan struct{}) {
	for range 60 {
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		msgs, err := lease(base, 8)
		if err != nil {
			return
		}
		var ids []string
		l.inFlight = l.inFlight[:0]
		for i, m := range msgs {
			if i%2 == 0 {
				l.held[m.Value] = true
				continue
			}
			ids = append(ids, m.Lease)
			l.inFlight = append(l.inFlight, m.Value)
		}
		if len(ids) == 0 {
			continue
		}
		b, _ := json.Marshal(map[string][]string{"leases": ids})
		st, _, err := call(http.MethodPost, base+"/api/v1/queues/"+durQueue+"/ack", "application/json", b)
		if err != nil || st != http.StatusOK {
			return
		}
		for _, v := range l.inFlight {
			l.acked[v] = true
		}
		l.inFlight = l.inFlight[:0]
	}
}

// leaseN leases n messages and keeps them.
func leaseN(t *testing.T, base string, n int) []string {
	t.Helper()
	msgs, err := lease(base, n)
	if err != nil || len(msgs) != n {
		t.Fatalf("lease %d: got %d, %v; want %d messages", n, len(msgs), err, n)
	}
	vals := make([]string, n)
	for i, m := range msgs {
		vals[i] = m.Value
	}
	return vals
}

// openStream opens a long-lived GET (a COMET consumer) and returns its body
// once the response has begun.
func openStream(t *testing.T, url string) io.ReadCloser {
	t.Helper()
	resp, err := (&http.Client{}).Get(url)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %v, want 200", url, resp, err)
	}
	return resp.Body
}

// taken is one message a hard get returned.
type taken struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// drain takes messages with hard gets until the queue is empty (at most max
// of them) and returns them by value; a value taken twice fails the test.
func drain(t *testing.T, base string, max int) map[string]taken {
	t.Helper()
	got := map[string]taken{}
	keys := map[string]string{}
	deadline := time.Now().Add(4 * procWait)
	for range max + 1 {
		if time.Now().After(deadline) {
			t.Fatalf("draining took over %v, want it done", 4*procWait)
		}
		st, b, err := call(http.MethodGet, base+"/q/"+durQueue, "", nil)
		if err != nil {
			t.Fatalf("hard get: %v", err)
		}
		if st == http.StatusNoContent {
			return got
		}
		var m taken
		if st != http.StatusOK || json.Unmarshal(b, &m) != nil {
			t.Fatalf("hard get: status %d %q, want 200 with a message or 204", st, b)
		}
		if prev, dup := got[m.Value]; dup {
			t.Fatalf("value %s handed out twice (%s and %s), want once", m.Value, prev.Key, m.Key)
		}
		if prev, dup := keys[m.Key]; dup {
			t.Fatalf("key %s handed out twice (%s and %s), want once", m.Key, prev, m.Value)
		}
		got[m.Value], keys[m.Key] = m, m.Value
	}
	t.Fatalf("queue still not empty after %d hard gets, want at most %d messages", max+1, max)
	return nil
}

// checkOnce checks that every drained message was pushed by the test and,
// when its push was acknowledged, kept the key it was acknowledged with.
func checkOnce(t *testing.T, got map[string]taken, l *ledger) {
	t.Helper()
	for v, m := range got {
		if !l.tried[v] {
			t.Errorf("drained %s (%s), which nobody pushed", v, m.Key)
		}
		if a, ok := l.acked[v]; ok && a.key != m.Key {
			t.Errorf("%s came back as %s, want the acknowledged key %s", v, m.Key, a.key)
		}
	}
}

// checkIDsIncrease pushes once more and checks the new id is above every id
// handed out before.
func checkIDsIncrease(t *testing.T, base string, got map[string]taken, l *ledger) {
	t.Helper()
	var maxID uint64
	note := func(key string) {
		if _, id, err := broker.ParseKey(key); err == nil && id > maxID {
			maxID = id
		}
	}
	for _, a := range l.acked {
		note(a.key)
	}
	for _, m := range got {
		note(m.Key)
	}
	st, b, err := call(http.MethodPost, base+"/q/"+durQueue, "text/plain", []byte("after restart"))
	if err != nil || st != http.StatusOK {
		t.Fatalf("push after restart: %d %s %v, want 200", st, b, err)
	}
	_, id, err := broker.ParseKey(strings.TrimSuffix(string(b), "\r\n"))
	if err != nil || id <= maxID {
		t.Errorf("push after restart got key %q (%v), want an id above %d", b, err, maxID)
	}
}
