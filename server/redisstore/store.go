// Package redisstore is the broker's Store on Redis (a server or a Redis
// Cluster), so that several tabreduce servers share their queues, jobs
// and key/values. Every operation that must be atomic is one Lua script
// (EVALSHA, falling back to EVAL); its keys share one hash tag, so that it
// stays in one Cluster slot. What one operation cannot keep in one slot,
// and how it stays correct anyway, is in doc.go.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Options configure Open.
type Options struct {
	Logger *slog.Logger // default slog.Default()
}

// Store is a broker.Store on Redis. Any number of Stores, in any number of
// processes, may share one Redis and prefix: they are one store.
type Store struct {
	client  redis.UniversalClient
	cluster bool
	keys    keys
	origin  string // this Store's id in the events it publishes
	log     *slog.Logger
	url     string // redacted, for logs

	watch  broker.Watchers
	feed   *feed
	hinted hintCache
	leases leaseHints
	maint  maintenance
	seq    atomic.Uint64 // outbox ids and request ids

	closed    atomic.Bool
	closeOnce sync.Once

	// Set by tests (export_test.go): how old an outbox entry must be for
	// maintenance to complete it, whether Commit leaves its foreign parts
	// to maintenance (as a crash after the primary script would), and how
	// long a relay's members count without renewal.
	outboxGrace  time.Duration
	leaveForeign bool
	presenceTTL  time.Duration // of the pub/sub relays it makes
}

var _ broker.Store = (*Store)(nil)

var errClosed = fmt.Errorf("redis store: %w", broker.ErrClosed)

// clientLog sends go-redis's own log lines (dial retries and the like,
// which the store reports as errors anyway) to slog at debug level.
type clientLog struct{}

func (clientLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

var quietClientLog sync.Once

// minRedis is the oldest Redis the scripts run on (ZADD LT/NX).
const minRedis = 6.2

// Open connects to the Redis a store URL names (ParseURL), checks its
// version and the store's layout, loads the scripts and starts the feed
// of other processes' events.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	quietClientLog.Do(func() { redis.SetLogger(clientLog{}) })
	s := &Store{
		client:  cfg.client(),
		cluster: cfg.Cluster,
		keys:    keys{prefix: cfg.Prefix},
		origin:  newOrigin(),
		log:     opts.Logger,
		url:     redact(rawURL),

		outboxGrace: outboxGrace,
		presenceTTL: presenceTTL,
	}
	if err := s.start(ctx); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("open store %s: %w", s.url, err)
	}
	return s, nil
}

func (s *Store) start(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return err
	}
	if err := s.checkServer(ctx); err != nil {
		return err
	}
	ok, err := s.client.SetNX(ctx, s.keys.layout(), layoutVersion, 0).Result()
	if err != nil {
		return err
	}
	if !ok {
		v, err := s.client.Get(ctx, s.keys.layout()).Result()
		if err != nil {
			return err
		}
		if v != layoutVersion {
			return fmt.Errorf("key layout %q under prefix %q; this server writes %q", v, s.keys.prefix, layoutVersion)
		}
	}
	if err := s.loadScripts(ctx); err != nil {
		return err
	}
	s.feed = startFeed(s)
	return nil
}

// checkServer refuses a Redis too old for the scripts and warns when its
// persistence loses acknowledged writes on a restart.
func (s *Store) checkServer(ctx context.Context) error {
	info, err := s.client.Info(ctx, "server", "persistence").Result()
	if err != nil {
		return err
	}
	version := infoField(info, "redis_version")
	major, minor, _ := strings.Cut(version, ".")
	minor, _, _ = strings.Cut(minor, ".")
	v, _ := strconv.ParseFloat(major+"."+minor, 64)
	if v < minRedis {
		return fmt.Errorf("redis %s is too old: the store needs %.1f or later", version, minRedis)
	}
	if infoField(info, "aof_enabled") != "1" {
		s.log.Warn("redis has no append-only file: a Redis restart loses what was written since its last snapshot",
			"store", s.url)
	}
	return nil
}

// infoField returns one field of an INFO reply (the first, on a cluster).
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// requestID names one request of this Store uniquely among every Store's
// (its origin, drawn at random once, and a sequence number): a lease's
// reply key. Drawing random bytes for each was a system call a lease.
func (s *Store) requestID() string {
	return s.origin + "." + strconv.FormatUint(s.seq.Add(1), 36)
}

func newOrigin() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// redact drops a URL's password.
func redact(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		if at := strings.LastIndexByte(raw[i+3:], '@'); at >= 0 {
			return raw[:i+3] + "…@" + raw[i+3+at+1:]
		}
	}
	return raw
}

// Prefix is the key prefix the store writes under.
func (s *Store) Prefix() string { return s.keys.prefix }

// Client is the store's Redis client, for tests and tools that look at
// what the store wrote.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Close stops the event feed and closes the connections. A second Close
// is harmless.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.feed != nil {
			s.feed.close()
		}
		err = s.client.Close()
	})
	return err
}

func (s *Store) isClosed() bool { return s.closed.Load() }

// check refuses calls on a closed store or a done context.
func (s *Store) check(ctx context.Context) error {
	if s.isClosed() {
		return errClosed
	}
	return ctx.Err()
}

// mapErr turns the client's errors into the store's.
func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if s.isClosed() || errors.Is(err, redis.ErrClosed) {
		return errClosed
	}
	return err
}

// nowArgs is a time as the scripts take it: 20-digit nanoseconds, so that
// times compare as strings, and microseconds for scores.
type nowArgs struct{ ns, us string }

func timeArgs(t time.Time) nowArgs {
	n := nanos(t)
	return nowArgs{ns: pad(n), us: strconv.FormatInt(n/1000, 10)}
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// pad writes n as 20 decimal digits; times before 1970 count as zero.
func pad(n int64) string {
	if n < 0 {
		n = 0
	}
	s := strconv.FormatInt(n, 10)
	return strings.Repeat("0", 20-len(s)) + s
}

// usScore is a nanosecond time's microsecond score.
func usScore(n int64) string { return strconv.FormatInt(n/1000, 10) }
