package redisstore

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Config is what a store URL says.
type Config struct {
	Addrs    []string // host:port of the server, or of cluster nodes
	Cluster  bool     // a Redis Cluster (redis+cluster://)
	TLS      bool     // rediss:// or rediss+cluster://
	Username string
	Password string
	DB       int    // database number; standalone only
	Prefix   string // key prefix (DefaultPrefix when empty)
}

// ParseURL reads a store URL:
//
//	redis://[[user]:password@]host:port[/db][?prefix=P]
//	rediss://…                                     the same over TLS
//	redis+cluster://[[user]:password@]host:port[,host:port…][?prefix=P]
//	rediss+cluster://…                             a cluster over TLS
//
// The prefix starts every key the store writes (default "tabreduce"), so
// several services can share one Redis.
func ParseURL(raw string) (Config, error) {
	var c Config
	u, err := url.Parse(raw)
	if err != nil {
		return c, fmt.Errorf("store URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "redis":
	case "rediss":
		c.TLS = true
	case "redis+cluster":
		c.Cluster = true
	case "rediss+cluster":
		c.Cluster, c.TLS = true, true
	default:
		return c, fmt.Errorf("store URL: scheme %q is not redis, rediss, redis+cluster or rediss+cluster", u.Scheme)
	}
	if u.Opaque != "" || u.Fragment != "" {
		return c, fmt.Errorf("store URL: want %s://host:port", u.Scheme)
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return c, fmt.Errorf("store URL: no host")
		}
		if _, port, err := net.SplitHostPort(h); err != nil || port == "" {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "6379")
		}
		c.Addrs = append(c.Addrs, h)
	}
	if !c.Cluster && len(c.Addrs) > 1 {
		return c, fmt.Errorf("store URL: several hosts need redis+cluster://")
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if c.Cluster {
			return c, fmt.Errorf("store URL: a cluster has no database number")
		}
		if c.DB, err = strconv.Atoi(p); err != nil || c.DB < 0 {
			return c, fmt.Errorf("store URL: database %q is not a number", p)
		}
	}
	for k, vs := range u.Query() {
		switch k {
		case "prefix":
			c.Prefix = vs[len(vs)-1]
		default:
			return c, fmt.Errorf("store URL: unknown parameter %q (known: prefix)", k)
		}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return c, err
	}
	return c, nil
}

// MaxPrefix bounds the key prefix.
const MaxPrefix = 64

func checkPrefix(p string) error {
	if len(p) > MaxPrefix || strings.ContainsAny(p, "{}") {
		return fmt.Errorf("store prefix %q: at most %d bytes, no braces", p, MaxPrefix)
	}
	for _, r := range p {
		if r < 0x21 || r == 0x7f {
			return fmt.Errorf("store prefix %q: no spaces or control characters", p)
		}
	}
	return nil
}

// client makes the go-redis client the URL describes. Retries are off:
// a write script whose reply was lost may have run, and running it again
// would apply it twice; the callers see the error instead.
func (c Config) client() redis.UniversalClient {
	var tlsConf *tls.Config
	if c.TLS {
		host, _, _ := net.SplitHostPort(c.Addrs[0])
		tlsConf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if c.Cluster {
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.Addrs, Username: c.Username, Password: c.Password,
			TLSConfig: tlsConf, MaxRetries: -1,
		})
	}
	return redis.NewClient(&redis.Options{
		Addr: c.Addrs[0], Username: c.Username, Password: c.Password, DB: c.DB,
		TLSConfig: tlsConf, MaxRetries: -1,
	})
}
