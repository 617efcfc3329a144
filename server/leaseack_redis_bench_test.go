package server_test

import (
	"encoding/csv"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
)

// BenchmarkLeaseAckAgainstRedis alternates BenchmarkLeaseAck's run of 16
// clients (lease 100, ack the 100) with redis-benchmark's pipelined RPOP
// (-c 16 -P 100) of a filled list on Debian's redis-server (AOF, fsync every
// second), three rounds, and reports the median ratio of the two rates.
func BenchmarkLeaseAckAgainstRedis(b *testing.B) {
	const clients, batch, rounds, msgs, pops = 16, 100, 3, 100_000, 2_000_000
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.Skip("redis-benchmark is not installed (make redis installs it)")
	}
	rs, err := redistest.Start(b.TempDir(), redistest.Options{Fsync: "everysec"})
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	port := strconv.Itoa(rs.Port)
	var ours, redis, ratios []float64
	for round := range rounds {
		got := leaseAckRate(b, clients, batch, msgs)
		if _, err := rs.CLI("del", "mylist"); err != nil {
			b.Fatal(err)
		}
		if _, err := redisRate(bench, port, "lpush", pops+pops/2); err != nil {
			b.Fatal(err)
		}
		peer, err := redisRate(bench, port, "rpop", pops)
		if err != nil {
			b.Fatal(err)
		}
		ours, redis, ratios = append(ours, got), append(redis, peer), append(ratios, got/peer)
		fmt.Printf("round %d: lease+ack %.0f msgs/s, redis rpop -P 100 %.0f/s, ratio %.3f\n", round+1, got, peer, got/peer)
	}
	b.ReportMetric(median(ours), "msgs/s")
	b.ReportMetric(median(redis), "redis-pops/s")
	b.ReportMetric(median(ratios), "ratio")
}

// leaseAckRate leases and acks msgs messages in batches from clients on a
// new server and returns messages a second.
func leaseAckRate(b *testing.B, clients, batch, msgs int) float64 {
	srv := benchServer(b)
	fill(b, srv, "bench", msgs)
	base := srv.URL() + "/api/v1/queues/bench/"
	client := benchClient(clients)
	var done atomic.Int64
	elapsed, _, err := spread(clients, msgs/batch, func(int) (time.Time, error) {
		t0 := time.Now()
		got, err := leaseAndAck(client, base, batch)
		done.Add(int64(got))
		return t0, err
	})
	if err != nil {
		b.Fatal(err)
	}
	return float64(done.Load()) / elapsed.Seconds()
}

// redisRate runs one redis-benchmark test at 16 connections, pipelined by
// 100, and returns its requests a second.
func redisRate(bench, port, test string, n int) (float64, error) {
	out, err := exec.Command(bench, "-p", port, "-c", "16", "-P", "100", "-t", test, "-n", strconv.Itoa(n), "--csv").Output()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark -t %s: %v", test, err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil || len(rows) < 2 || len(rows[1]) < 2 {
		return 0, fmt.Errorf("redis-benchmark output %q: %v", out, err)
	}
	return strconv.ParseFloat(rows[1][1], 64)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
