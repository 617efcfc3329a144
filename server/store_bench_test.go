package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/redisstore/redistest"
)

// BenchmarkStores runs the same work on one server over buntdb and one
// over Redis (a redis-server of its own per run, AOF with appendfsync
// everysec, as buntdb's --fsync everysec), alternated round by round in
// one run: HTTP pushes from 16 clients, and no-op map tasks through 4
// native workers (verify none: the platform's cost, not verification's).
// On Redis it also reports what Redis did per push and per task: commands
// (INFO commandstats, counting those a script runs), scripts, bytes in and
// out (INFO stats) and redis-server's CPU time (INFO cpu).
func BenchmarkStores(b *testing.B) {
	for _, work := range []string{"push", "tasks"} {
		for round := range 2 {
			for _, store := range []string{"buntdb", "redis"} {
				b.Run(fmt.Sprintf("%s/store=%s/round=%d", work, store, round), func(b *testing.B) {
					cfg := server.Config{Addr: "127.0.0.1:0", DataDir: b.TempDir(), Fsync: benchFsync(), Logger: discardLogger()}
					var rs *redistest.Server
					if store == "redis" {
						var err error
						if rs, err = redistest.Start(b.TempDir(), redistest.Options{Fsync: "everysec"}); err != nil {
							b.Fatal(err)
						}
						b.Cleanup(rs.Close)
						cfg.StoreURL = rs.URL("bench")
					}
					srv, err := server.Start(context.Background(), cfg)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { srv.Close() })
					var before redisFigures
					if rs != nil {
						before = redisCounts(b, rs)
					}
					switch work {
					case "push":
						url := srv.URL() + "/q/bench"
						runClients(b, 16, "push", func(c *http.Client, _ int64) error {
							_, err := post(c, url, "application/octet-stream", payload)
							return err
						})
					case "tasks":
						noopTasks(b, srv, engine.VerifyNone)
					}
					if rs != nil {
						after, per := redisCounts(b, rs), "/"+work[:4]
						n := float64(b.N)
						b.ReportMetric(float64(after.calls-before.calls)/n, "cmds"+per)
						b.ReportMetric(float64(after.scripts-before.scripts)/n, "scripts"+per)
						b.ReportMetric(float64(after.in-before.in)/n, "Bin"+per)
						b.ReportMetric(float64(after.out-before.out)/n, "Bout"+per)
						b.ReportMetric((after.cpu-before.cpu)/n*1e6, "redis-cpu-us"+per)
					}
				})
			}
		}
	}
}

// redisFigures are Redis's totals: commands run (scripts' own included),
// scripts run, bytes read and written, CPU seconds.
type redisFigures struct {
	calls, scripts, in, out int64
	cpu                     float64
}

// redisCounts reads INFO all. The INFO call itself is one command more,
// which a per-operation figure over b.N drowns.
func redisCounts(b *testing.B, rs *redistest.Server) redisFigures {
	b.Helper()
	out, err := rs.CLI("INFO", "all")
	if err != nil {
		b.Fatal(err)
	}
	var c redisFigures
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		name, v, _ := strings.Cut(line, ":")
		switch {
		case strings.HasPrefix(name, "cmdstat_"):
			// cmdstat_evalsha:calls=12,usec=...
			n, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			calls, _ := strconv.ParseInt(n, 10, 64)
			c.calls += calls
			if name == "cmdstat_evalsha" || name == "cmdstat_eval" {
				c.scripts += calls
			}
		case name == "used_cpu_user" || name == "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			c.cpu += f
		case name == "total_net_input_bytes":
			c.in, _ = strconv.ParseInt(v, 10, 64)
		case name == "total_net_output_bytes":
			c.out, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if c.calls == 0 {
		b.Fatalf("INFO all shows no command counts:\n%s", out)
	}
	return c
}
