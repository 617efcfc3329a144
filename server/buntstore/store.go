// Package buntstore is the broker's Store on an embedded buntdb file: every
// operation is one buntdb transaction, appended to the file before it returns
// (and fsynced as the Fsync option says).
package buntstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// FileName is the buntdb file inside the data directory.
const FileName = "tabreduce.db"

// Fsync policies: how often the file is flushed to the disk.
const (
	FsyncAlways   = "always"   // every transaction: an acknowledged write survives a crash
	FsyncEverySec = "everysec" // once a second: a crash loses at most the last second
	FsyncNever    = "never"    // left to the operating system
)

// Options configure Open.
type Options struct {
	Fsync  string       // one of the Fsync policies; default everysec
	Logger *slog.Logger // default slog.Default()
}

// Store is a broker.Store backed by buntdb.
type Store struct {
	db        *buntdb.DB
	syncer    *syncer // everysec only
	closeOnce sync.Once
}

var _ broker.Store = (*Store)(nil)

// ParseFsync validates an fsync policy name.
func ParseFsync(s string) (buntdb.SyncPolicy, error) {
	switch s {
	case FsyncAlways:
		return buntdb.Always, nil
	case FsyncEverySec, "":
		return buntdb.EverySecond, nil
	case FsyncNever:
		return buntdb.Never, nil
	}
	return 0, fmt.Errorf("fsync %q must be always, everysec or never", s)
}

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	policy, err := ParseFsync(opts.Fsync)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := buntdb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var cfg buntdb.Config
	if err := db.ReadConfig(&cfg); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	cfg.SyncPolicy = policy
	if policy == buntdb.EverySecond {
		cfg.SyncPolicy = buntdb.Never // our syncer does it, outside buntdb's lock
	}
	if err := db.SetConfig(cfg); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db}
	if policy == buntdb.EverySecond {
		log := opts.Logger
		if log == nil {
			log = slog.Default()
		}
		s.syncer = startSyncer(path, time.Second, log)
	}
	return s, nil
}

// Close flushes and closes the file.
func (s *Store) Close() error {
	err := s.db.Close() // buntdb fsyncs on close
	if s.syncer != nil {
		s.closeOnce.Do(s.syncer.close)
	}
	if err != nil && !errors.Is(err, buntdb.ErrDatabaseClosed) {
		return err
	}
	return nil
}

// update runs fn in a write transaction, mapping buntdb's closed error.
func (s *Store) update(ctx context.Context, fn func(tx *buntdb.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapErr(s.db.Update(fn))
}

func (s *Store) view(ctx context.Context, fn func(tx *buntdb.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapErr(s.db.View(fn))
}

func mapErr(err error) error {
	if errors.Is(err, buntdb.ErrDatabaseClosed) {
		return broker.ErrClosed
	}
	return err
}

// scan returns the keys and values in [lo, hi) in order, at most limit of
// them (limit <= 0: all). buntdb forbids writes during iteration, so callers
// collect first and change after.
func scan(tx *buntdb.Tx, lo, hi string, limit int) (keys, vals []string, err error) {
	err = tx.AscendRange("", lo, hi, func(k, v string) bool {
		keys = append(keys, k)
		vals = append(vals, v)
		return limit <= 0 || len(keys) < limit
	})
	return keys, vals, err
}

// queueOfKey returns the queue name inside an "r:" or "f:" key.
func queueOfKey(key string) string {
	rest := key[2:]
	return rest[:strings.LastIndexByte(rest, ':')]
}

// scanRecords calls fn for each message record in [lo, hi), in key order,
// at most limit of them (limit <= 0: all). The records are read first and
// fn runs after, so fn may change the store.
func scanRecords(tx *buntdb.Tx, lo, hi string, limit int, fn func(key string, id uint64, r record) error) error {
	keys, vals, err := scan(tx, lo, hi, limit)
	if err != nil {
		return err
	}
	for i, k := range keys {
		r, err := decodeRecord(vals[i])
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		id, err := idOf(k)
		if err != nil {
			return err
		}
		if err := fn(k, id, r); err != nil {
			return err
		}
	}
	return nil
}
