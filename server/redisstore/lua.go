package redisstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

// script is one of the store's Lua scripts: the shared library (lua/lib.lua)
// followed by the script's own body. Redis caches it by its SHA1; run sends
// EVALSHA and falls back to EVAL when the server has not seen it (after a
// restart, or on a node that was not there at Open).
type script struct {
	name string
	s    *redis.Script
}

// The scripts, one per atomic operation (or family of operations).
var (
	scriptPush       = loadScript("push")
	scriptGet        = loadScript("get")
	scriptLease      = loadScript("lease")
	scriptAck        = loadScript("ack")
	scriptNack       = loadScript("nack")
	scriptExtend     = loadScript("extend")
	scriptReap       = loadScript("reap")
	scriptNextDue    = loadScript("nextdue")
	scriptRecover    = loadScript("recover")
	scriptPurge      = loadScript("purge")
	scriptSetMeta    = loadScript("setmeta")
	scriptDelete     = loadScript("delete")
	scriptScan       = loadScript("scan")
	scriptCommit     = loadScript("commit")
	scriptKVGet      = loadScript("kvget")
	scriptKVSet      = loadScript("kvset")
	scriptKVDel      = loadScript("kvdel")
	scriptKVScan     = loadScript("kvscan")
	scriptKVReap     = loadScript("kvreap")
	scriptKVSwap     = loadScript("kvswap")
	scriptRecScan    = loadScript("recscan")
	scriptHint       = loadScript("hint")
	scriptUnhint     = loadScript("unhint")
	scriptOwnerDone  = loadScript("ownerdone")
	scriptBlobSwitch = loadScript("blobswitch")
	scriptBlobDelete = loadScript("blobdelete")
)

// allScripts are loaded on every master at Open.
var allScripts = []*script{
	scriptPush, scriptGet, scriptLease, scriptAck, scriptNack, scriptExtend,
	scriptReap, scriptNextDue, scriptRecover, scriptPurge, scriptSetMeta,
	scriptDelete, scriptScan, scriptCommit, scriptKVGet, scriptKVSet,
	scriptKVDel, scriptKVScan, scriptKVReap, scriptKVSwap, scriptRecScan,
	scriptHint, scriptUnhint, scriptOwnerDone, scriptBlobSwitch, scriptBlobDelete,
}

func loadScript(name string) *script {
	lib, err := luaFS.ReadFile("lua/lib.lua")
	if err != nil {
		panic(err) // embedded: cannot be missing
	}
	body, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	return &script{name: name, s: redis.NewScript(string(lib) + "\n" + string(body))}
}

// errScript marks an error a script raised itself (fail in lib.lua): the
// data it read was not what the store writes.
var errScript = errors.New("redis store: script refused the data it read")

// run runs a script with the common arguments first (lib.lua).
func (s *Store) run(ctx context.Context, sc *script, now nowArgs, keys []string, args ...any) (any, error) {
	full := make([]any, 0, 4+len(args))
	full = append(full, s.keys.channel(), s.origin, now.ns, now.us)
	full = append(full, args...)
	v, err := sc.s.Run(ctx, s.client, keys, full...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.scriptErr(sc, err)
	}
	return v, nil
}

// runAgain is run for a script that may safely run twice (its keys make a
// second run give the first one's reply): a call that failed on the way,
// its reply lost or Redis restarting, is tried again with backoff for up to
// retryFor.
func (s *Store) runAgain(ctx context.Context, sc *script, now nowArgs, keys []string, args ...any) (any, error) {
	deadline := time.Now().Add(retryFor)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		full := make([]any, 0, 4+len(args))
		full = append(full, s.keys.channel(), s.origin, now.ns, now.us)
		full = append(full, args...)
		v, err := sc.s.Run(ctx, s.client, keys, full...).Result()
		if err == nil || errors.Is(err, redis.Nil) {
			return v, nil
		}
		if !transient(err) || s.isClosed() || time.Now().Add(wait).After(deadline) {
			return nil, s.scriptErr(sc, err)
		}
		select {
		case <-ctx.Done():
			return nil, s.scriptErr(sc, err)
		case <-time.After(wait):
		}
	}
}

// retryFor bounds runAgain's retries.
const retryFor = 30 * time.Second

// transient reports whether a call's error may pass: the connection broke
// (the reply may be lost), or Redis is loading its data or failing over.
func transient(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, redis.ErrClosed)
	}
	msg := rerr.Error()
	for _, p := range []string{"LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// scriptErr names the script in an error and maps the client's closed
// error to broker.ErrClosed.
func (s *Store) scriptErr(sc *script, err error) error {
	if s.isClosed() || errors.Is(err, redis.ErrClosed) {
		return errClosed
	}
	if strings.Contains(err.Error(), "tabreduce: ") {
		return fmt.Errorf("%w: %s: %v", errScript, sc.name, err)
	}
	return fmt.Errorf("redis %s: %w", sc.name, err)
}

// loadScripts puts every script into the script cache of every master, so
// that the first EVALSHA of each finds it.
func (s *Store) loadScripts(ctx context.Context) error {
	load := func(ctx context.Context, c *redis.Client) error {
		for _, sc := range allScripts {
			if err := sc.s.Load(ctx, c).Err(); err != nil {
				return fmt.Errorf("load script %s: %w", sc.name, err)
			}
		}
		return nil
	}
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, load)
	}
	return load(ctx, s.client.(*redis.Client))
}
