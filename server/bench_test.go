package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server"
)

// The broker's benchmarks: HTTP push, hard get, lease+ack and WebSocket
// delivery on a real server with --fsync everysec, against the raw buntdb
// operation measured in the same run. Run with make bench.

func benchServer(b *testing.B) *server.Server {
	b.Helper()
	return benchServerWith(b, server.Config{})
}

// benchServerWith is benchServer with cfg's other settings.
func benchServerWith(b *testing.B, cfg server.Config) *server.Server {
	b.Helper()
	cfg.Addr, cfg.DataDir, cfg.Fsync, cfg.Logger = "127.0.0.1:0", b.TempDir(), benchFsync(), discardLogger()
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv
}

func benchClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
	}}
}

// runClients runs b.N calls of op spread over n goroutines and reports
// calls/s and the p50/p99 latency of one call.
func runClients(b *testing.B, n int, unit string, op func(c *http.Client, i int64) error) {
	b.Helper()
	client := benchClient(n)
	b.ResetTimer()
	elapsed, lat, err := spread(n, b.N, func(i int) (time.Time, error) {
		t0 := time.Now()
		return t0, op(client, int64(i))
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	reportLatency(b, lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit+"/s")
}

// spread runs op for i in [0, calls) on n goroutines until the calls run out
// or one fails. op returns when its call's latency began (its start, or
// the time it was due). spread returns the wall time, every call's
// latency and the first error.
func spread(n, calls int, op func(i int) (time.Time, error)) (time.Duration, []time.Duration, error) {
	var next atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(calls) {
					return
				}
				began, err := op(int(i))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[g] = append(lat[g], time.Since(began))
			}
		}()
	}
	wg.Wait()
	err, _ := firstErr.Load().(error)
	return time.Since(start), slices.Concat(lat...), err
}

func reportLatency(b *testing.B, all []time.Duration) {
	if len(all) == 0 {
		return
	}
	p50, p99 := percentiles(all)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
}

// percentiles returns the median and the 99th percentile, in ms.
func percentiles(all []time.Duration) (p50, p99 float64) {
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(all[len(all)/2]), ms(all[len(all)*99/100])
}
func post(c *http.Client, url, ctype string, body []byte) ([]byte, error) {
	resp, err := c.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("POST %s: %s %s", url, resp.Status, out)
	}
	return out, err
}

var payload = bytes.Repeat([]byte("x"), 100)

// BenchmarkBuntdbSet is the baseline: one raw buntdb Set transaction of the
// same payload, with the same fsync policy, from as many goroutines.
func BenchmarkBuntdbSet(b *testing.B) {
	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", n), func(b *testing.B) {
			db, err := buntdb.Open(filepath.Join(b.TempDir(), "raw.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var seq atomic.Int64
			b.SetParallelism((n + 1) / 2)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := fmt.Sprintf("r:bench:%016x", seq.Add(1))
					if err := db.Update(func(tx *buntdb.Tx) error {
						_, _, err := tx.Set(k, string(payload), nil)
						return err
					}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
		})
	}
}

// BenchmarkHTTPPush is POST /q/{queue} with a raw 100-byte body over
// keep-alive connections.
func BenchmarkHTTPPush(b *testing.B) {
	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			srv := benchServer(b)
			url := srv.URL() + "/q/bench"
			runClients(b, n, "push", func(c *http.Client, _ int64) error {
				_, err := post(c, url, "application/octet-stream", payload)
				return err
			})
		})
	}
}

// BenchmarkHTTPHardGet is GET /q/{queue} on a queue filled beforehand.
func BenchmarkHTTPHardGet(b *testing.B) {
	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			srv := benchServer(b)
			fill(b, srv, "bench", b.N)
			url := srv.URL() + "/q/bench"
			runClients(b, n, "get", func(c *http.Client, _ int64) error { return hardGet(c, url) })
		})
	}
}

// hardGet takes one message with RestMQ's GET /q/{queue}; an empty queue
// is an error.
func hardGet(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// fill pushes n messages in batches.
func fill(b *testing.B, srv *server.Server, queue string, n int) {
	b.Helper()
	if err := fillErrs(srv, queue, n); err != nil {
		b.Fatal(err)
	}
}

func fillErrs(srv *server.Server, queue string, n int) error {
	c := benchClient(4)
	items := make([]string, 0, 5000)
	for i := 0; i < n; {
		items = items[:0]
		for ; i < n && len(items) < cap(items); i++ {
			items = append(items, string(payload))
		}
		body, _ := json.Marshal(items)
		if _, err := post(c, srv.URL()+"/api/v1/queues/"+queue+"/messages", "application/json", body); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkLeaseAck leases batches of 100 and acks each batch in one call;
// the metric counts messages.
func BenchmarkLeaseAck(b *testing.B) {
	const batch = 100
	for _, n := range []int{4, 16} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			srv := benchServer(b)
			calls := (b.N + batch - 1) / batch
			fill(b, srv, "bench", calls*batch)
			base := srv.URL() + "/api/v1/queues/bench/"
			var msgs atomic.Int64
			client := benchClient(n)
			b.ResetTimer()
			cpu0 := processCPU()
			elapsed, lat, err := spread(n, calls, func(int) (time.Time, error) {
				t0 := time.Now()
				got, err := leaseAndAck(client, base, batch)
				msgs.Add(int64(got))
				return t0, err
			})
			cpu := processCPU() - cpu0
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			reportLatency(b, lat)
			b.ReportMetric(float64(msgs.Load())/elapsed.Seconds(), "msgs/s")
			// Client and server share the process: CPU a message is both
			// sides', and steadier than msgs/s on a loaded machine.
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(max(msgs.Load(), 1)), "cpu-µs/msg")
		})
	}
}

func leaseAndAck(c *http.Client, base string, n int) (int, error) {
	out, err := post(c, fmt.Sprintf("%slease?n=%d&visibility=60", base, n), "", nil)
	if err != nil {
		return 0, err
	}
	var got struct {
		Messages []struct {
			Lease string `json:"lease"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		return 0, err
	}
	if len(got.Messages) == 0 {
		return 0, nil
	}
	ids := make([]string, len(got.Messages))
	for i, m := range got.Messages {
		ids[i] = m.Lease
	}
	body, _ := json.Marshal(map[string][]string{"leases": ids})
	if _, err := post(c, base+"ack", "application/json", body); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// BenchmarkWSConsumer is one WebSocket consumer receiving messages pushed in
// batches: messages/s through live delivery (each leased, written, acked).
func BenchmarkWSConsumer(b *testing.B) {
	srv := benchServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(srv.URL(), "http", "ws", 1)+"/ws/bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"ack":false}`)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	fillErr := make(chan error, 1)
	go func() { fillErr <- fillErrs(srv, "bench", b.N) }()
	for i := 0; i < b.N; i++ {
		if _, _, err := conn.Read(ctx); err != nil {
			b.Fatalf("after %d messages: %v", i, err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	if err := <-fillErr; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHTTPPushHalfPeak measures the push rate's peak for a second, then
// pushes b.N messages paced at half of it (open loop: latency counts from
// each push's scheduled time, so queueing is not hidden).
func BenchmarkHTTPPushHalfPeak(b *testing.B) {
	const clients = 16
	srv := benchServer(b)
	url := srv.URL() + "/q/bench"
	client := benchClient(clients)
	push := func() error {
		_, err := post(client, url, "application/octet-stream", payload)
		return err
	}
	peak := measurePeak(clients, time.Second, push)
	rate := peak / 2
	interval := time.Duration(float64(time.Second) / rate)
	b.ResetTimer()
	start := time.Now()
	_, lat, err := spread(clients, b.N, func(i int) (time.Time, error) {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		return due, push()
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(peak, "peak-push/s")
	b.ReportMetric(rate, "paced-push/s")
	reportLatency(b, lat)
}

// measurePeak runs op from n goroutines for d and returns calls/s.
func measurePeak(n int, d time.Duration, op func() error) float64 {
	var count atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if op() != nil {
					return
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(count.Load()) / d.Seconds()
}

// benchFsync is the fsync policy of the benchmark servers: everysec, or
// TABREDUCE_BENCH_FSYNC to compare.
func benchFsync() string {
	if f := os.Getenv("TABREDUCE_BENCH_FSYNC"); f != "" {
		return f
	}
	return "everysec"
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
