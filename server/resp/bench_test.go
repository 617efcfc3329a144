package resp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/resp"
)

// BenchmarkCommands runs SET, GET, RPUSH and LPOP from parallel
// connections, with one command in flight each and with pipelines of 16
// (redis-benchmark's -P 1 and -P 16); in-process, so that a profile shows
// the server's side.
func BenchmarkCommands(b *testing.B) {
	val := strings.Repeat("x", 3)
	var n atomic.Int64
	cmds := map[string]func(i int64) string{
		"SET": func(i int64) string {
			return fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\n%s\r\n", len(key(i)), key(i), val)
		},
		"GET": func(i int64) string { return fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key(i)), key(i)) },
		"RPUSH": func(int64) string {
			return "*3\r\n$5\r\nRPUSH\r\n$5\r\nbench\r\n$3\r\n" + val + "\r\n"
		},
		"LPOP": func(int64) string { return "*2\r\n$4\r\nLPOP\r\n$5\r\nbench\r\n" },
	}
	for _, depth := range []int{1, 16} {
		for _, name := range []string{"SET", "GET", "RPUSH", "LPOP"} {
			b.Run(fmt.Sprintf("%s/P%d", name, depth), func(b *testing.B) {
				if os.Getenv("TABREDUCE_BENCH_NO_BATCH") != "" {
					resp.SetBatching(false)
					defer resp.SetBatching(true)
				}
				s := serve(b, resp.Limits{})
				if name == "GET" || name == "LPOP" {
					fillFor(b, s, cmds, name, b.N+depth*16)
				}
				b.SetParallelism(8) // 16 connections on 2 cores
				cpu0 := cpuTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					nc, err := net.Dial("tcp", s.Addr())
					if err != nil {
						b.Error(err)
						return
					}
					defer nc.Close()
					br := bufio.NewReader(nc)
					var batch strings.Builder
					for more := true; more; {
						batch.Reset()
						sent := 0
						for sent < depth && pb.Next() {
							batch.WriteString(cmds[name](n.Add(1) % 10000))
							sent++
						}
						more = sent == depth
						if _, err := io.WriteString(nc, batch.String()); err != nil {
							b.Error(err)
							return
						}
						for range sent {
							if err := skipReply(br); err != nil {
								b.Error(err)
								return
							}
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				// CPU time is steadier than throughput on a shared machine.
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func key(i int64) string { return fmt.Sprintf("key:%06d", i) }

// fillFor prepares what GET and LPOP read: the keys, or n messages.
func fillFor(b *testing.B, s *resp.Server, cmds map[string]func(int64) string, name string, n int) {
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	fill, count := "SET", 10000
	if name == "LPOP" {
		fill, count = "RPUSH", n
	}
	for i := range count {
		io.WriteString(nc, cmds[fill](int64(i)))
		if err := skipReply(br); err != nil {
			b.Fatal(err)
		}
	}
}

// skipReply reads one reply of a line, or a bulk.
func skipReply(br *bufio.Reader) error {
	l, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if l[0] == '$' && l != "$-1\r\n" {
		_, err = br.ReadString('\n')
	}
	if l[0] == '-' {
		return fmt.Errorf("error reply %q", l)
	}
	return err
}
