package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/buntstore"
	"github.com/tabreduce/tabreduce/server/redisstore"
)

// StoreOptions are what OpenStore needs besides the URL.
type StoreOptions struct {
	DataDir string // the embedded store's directory when the URL names none
	Fsync   string // the embedded store's fsync policy
	Logger  *slog.Logger
}

// OpenStore opens the store a --store URL names:
//
//	""  or  "buntdb:"         the embedded buntdb file in opts.DataDir
//	"buntdb:///abs/dir"       the embedded buntdb file in /abs/dir
//	"buntdb:rel/dir"          the embedded buntdb file in rel/dir
//	"redis://host:port/db"    a Redis server shared by every server on it
//	"rediss://…"              the same over TLS
//	"redis+cluster://h:p,h:p" a Redis Cluster (rediss+cluster:// over TLS)
//
// A Redis URL may end in ?prefix=NAME, the prefix of every key (default
// "tabreduce"). Any other scheme is refused with an error that lists the
// known ones.
func OpenStore(rawURL string, opts StoreOptions) (broker.Store, error) {
	scheme, dir, err := parseStoreURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch scheme {
	case "buntdb":
		if dir == "" {
			dir = opts.DataDir
		}
		return buntstore.Open(dir, buntstore.Options{Fsync: opts.Fsync, Logger: opts.Logger})
	case "redis", "rediss", "redis+cluster", "rediss+cluster":
		ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
		defer cancel()
		return redisstore.Open(ctx, rawURL, redisstore.Options{Logger: opts.Logger})
	}
	return nil, fmt.Errorf("store %q: unknown scheme %q (this server knows buntdb:, redis:, rediss:, redis+cluster:, rediss+cluster:)", redact(rawURL), scheme)
}

// storeOpenTimeout bounds connecting to a shared store at start.
const storeOpenTimeout = 15 * time.Second

// parseStoreURL splits a store URL into its scheme and, for buntdb, its
// directory ("" for the data directory).
func parseStoreURL(rawURL string) (scheme, dir string, err error) {
	if rawURL == "" {
		return "buntdb", "", nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return "", "", fmt.Errorf("store %q is not a URL like buntdb:///path/to/dir", redact(rawURL))
	}
	scheme = strings.ToLower(u.Scheme)
	if scheme != "buntdb" {
		return scheme, "", nil
	}
	if u.Host != "" || u.RawQuery != "" || u.User != nil {
		return "", "", fmt.Errorf("store %q: a buntdb URL is buntdb:///path/to/dir or buntdb:relative/dir", redact(rawURL))
	}
	dir = u.Path
	if u.Opaque != "" {
		dir = u.Opaque
	}
	if dir != "" {
		dir = filepath.Clean(dir)
	}
	return scheme, dir, nil
}

// redact drops a URL's password, so errors and logs never show it.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(malformed)"
	}
	return u.Redacted()
}

// storeName is how the start-up log names the store.
func storeName(cfg Config) string {
	if cfg.Store != nil && cfg.StoreURL == "" {
		return fmt.Sprintf("%T", cfg.Store)
	}
	if cfg.StoreURL == "" {
		return "buntdb:" + filepath.Join(cfg.DataDir, buntstore.FileName) + " fsync=" + cfg.Fsync
	}
	return redact(cfg.StoreURL)
}
