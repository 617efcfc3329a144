package server_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Fan-out benchmarks: one queue's messages to ten COMET consumers under
// each policy (round-robin, the baseline, hands each message to one of
// them; broadcast, RestMQ's default, to all ten), and one channel's
// messages to ten WebSocket subscribers as raw frames (the PubSub servers'
// default) or as our JSON envelopes. Run with make bench.

const fanout = 10

// BenchmarkCometFanout reports deliveries/s (messages written to a
// consumer) and msgs/s (messages pushed and delivered).
func BenchmarkCometFanout(b *testing.B) {
	for _, policy := range []string{"roundrobin", "broadcast"} {
		b.Run(policy, func(b *testing.B) {
			srv := benchServer(b)
			c := benchClient(2)
			if _, err := post(c, srv.URL()+"/p/fan", "application/x-www-form-urlencoded", []byte("policy="+policy)); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var delivered atomic.Int64
			want := int64(b.N)
			if policy == "broadcast" {
				want *= fanout
			}
			done := make(chan struct{})
			var wg sync.WaitGroup
			for range fanout {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/c/fan", nil)
				resp, err := benchClient(1).Do(req)
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					defer resp.Body.Close()
					r := bufio.NewReader(resp.Body)
					for {
						if _, err := r.ReadSlice('\n'); err != nil {
							return
						}
						if delivered.Add(1) == want {
							close(done)
						}
					}
				})
			}
			eventually(b, "ten consumers", func() bool { return srv.Broker().Consumers("fan") == fanout })
			b.ResetTimer()
			start := time.Now()
			if err := fillErrs(srv, "fan", b.N); err != nil {
				b.Fatal(err)
			}
			select {
			case <-done:
			case <-ctx.Done():
				b.Fatalf("%d of %d deliveries", delivered.Load(), want)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			wg.Wait()
			b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkPubSubFanout reports deliveries/s from one publishing WebSocket
// to ten subscribers, in windows of 32 frames (a subscriber whose buffer
// fills up is dropped, by design, so the publisher waits for each window,
// and in json mode for its own copies too).
func BenchmarkPubSubFanout(b *testing.B) {
	for _, mode := range []string{"raw", "json"} {
		b.Run(mode, func(b *testing.B) {
			srv := benchServer(b)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			base := strings.Replace(srv.URL(), "http", "ws", 1) + "/ws/pubsub/fan?events=" + url.QueryEscape(mode)
			dial := func() *websocket.Conn {
				c, _, err := websocket.Dial(ctx, base, nil)
				if err != nil {
					b.Fatal(err)
				}
				c.SetReadLimit(-1)
				return c
			}
			var got, own atomic.Int64
			var wg sync.WaitGroup
			read := func(c *websocket.Conn, count *atomic.Int64) {
				wg.Go(func() {
					for {
						_, data, err := c.Read(ctx)
						if err != nil {
							return
						}
						if mode == "raw" || strings.Contains(string(data), `"type":"message"`) {
							count.Add(1)
						}
					}
				})
			}
			pub := dial()
			read(pub, &own) // in json mode the sender gets its own messages too
			for range fanout {
				read(dial(), &got)
			}
			eventually(b, "eleven members", func() bool {
				r, err := http.Get(srv.URL() + "/presence/fan")
				if err != nil {
					return false
				}
				defer r.Body.Close()
				var sb strings.Builder
				_, _ = bufio.NewReader(r.Body).WriteTo(&sb)
				return strings.Count(sb.String(), `"id"`) == fanout+1
			})
			frame := []byte(strings.Repeat("x", 100))
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < b.N; {
				n := min(32, b.N-sent)
				for range n {
					if err := pub.Write(ctx, websocket.MessageText, frame); err != nil {
						b.Fatal(err)
					}
				}
				sent += n
				for got.Load() < int64(sent*fanout) || (mode == "json" && own.Load() < int64(sent)) {
					if ctx.Err() != nil {
						b.Fatalf("%d of %d deliveries", got.Load(), sent*fanout)
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*fanout)/elapsed.Seconds(), "deliveries/s")
			cancel()
			wg.Wait()
		})
	}
}
