package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
)

// BenchmarkStores runs the same work on one server over buntdb and one
// over Redis (a redis-server with AOF, appendfsync everysec, as buntdb's
// --fsync everysec), alternated round by round in one run: HTTP pushes
// from 16 clients, and no-op map tasks through 4 native workers. On Redis
// it also reports what Redis did per push and per task: commands (INFO
// commandstats) and bytes in and out (INFO stats).
func BenchmarkStores(b *testing.B) {
	rs, err := redistest.Start(b.TempDir(), redistest.Options{Fsync: "everysec"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rs.Close)
	prefix := 0
	start := func(b *testing.B, store string) *server.Server {
		cfg := server.Config{Addr: "127.0.0.1:0", DataDir: b.TempDir(), Fsync: benchFsync(), Logger: discardLogger()}
		if store == "redis" {
			prefix++
			cfg.StoreURL = rs.URL("bench" + strconv.Itoa(prefix))
		}
		srv, err := server.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { srv.Close() })
		return srv
	}
	for _, work := range []string{"push", "tasks"} {
		for round := range 2 {
			for _, store := range []string{"buntdb", "redis"} {
				b.Run(fmt.Sprintf("%s/store=%s/round=%d", work, store, round), func(b *testing.B) {
					srv := start(b, store)
					before := redisCounts(b, rs)
					switch work {
					case "push":
						url := srv.URL() + "/q/bench"
						runClients(b, 16, "push", func(c *http.Client, _ int64) error {
							_, err := post(c, url, "application/octet-stream", payload)
							return err
						})
					case "tasks":
						noopTasks(b, srv)
					}
					if store == "redis" {
						after := redisCounts(b, rs)
						b.ReportMetric(float64(after.calls-before.calls)/float64(b.N), "cmds/"+work[:4])
						b.ReportMetric(float64(after.in-before.in)/float64(b.N), "Bin/"+work[:4])
						b.ReportMetric(float64(after.out-before.out)/float64(b.N), "Bout/"+work[:4])
					}
				})
			}
		}
	}
}

// counts are Redis's totals: commands run, bytes read and written.
type counts struct{ calls, in, out int64 }

// redisCounts reads INFO commandstats and stats. The INFO call itself is
// one command more, which a per-operation figure over b.N drowns.
func redisCounts(b *testing.B, rs *redistest.Server) counts {
	b.Helper()
	out, err := rs.CLI("INFO", "all")
	if err != nil {
		b.Fatal(err)
	}
	var c counts
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "cmdstat_"):
			// cmdstat_evalsha:calls=12,usec=...
			_, rest, _ := strings.Cut(line, ":calls=")
			n, _, _ := strings.Cut(rest, ",")
			v, _ := strconv.ParseInt(n, 10, 64)
			c.calls += v
		case strings.HasPrefix(line, "total_net_input_bytes:"):
			c.in, _ = strconv.ParseInt(strings.TrimPrefix(line, "total_net_input_bytes:"), 10, 64)
		case strings.HasPrefix(line, "total_net_output_bytes:"):
			c.out, _ = strconv.ParseInt(strings.TrimPrefix(line, "total_net_output_bytes:"), 10, 64)
		}
	}
	if c.calls == 0 {
		b.Fatalf("INFO all shows no command counts:\n%s", out)
	}
	return c
}
