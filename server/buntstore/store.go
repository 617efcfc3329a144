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
	// ShrinkMinSize is the file size below which the file is never
	// rewritten to drop what was deleted (default 1 MiB); above it, it is
	// rewritten once it holds over twice what is live (shrink.go).
	ShrinkMinSize int
}

// DefaultShrinkMinSize is Options.ShrinkMinSize's default: small, so that a
// store whose queues came and went returns near its size before.
const DefaultShrinkMinSize = 1 << 20

// shrinkCheck is how often the shrinker looks at the file.
const shrinkCheck = 2 * time.Second

// Store is a broker.Store backed by buntdb. It holds its directory
// exclusively (a lock file), so every lease owner that has not spoken since
// Open is gone.
type Store struct {
	db        *buntdb.DB
	dir       string
	lock      *DirLock
	syncer    *syncer // everysec only
	shrinker  *shrinker
	log       *slog.Logger
	closeOnce sync.Once

	watch broker.Watchers
	owned owners

	pushes, takes group // concurrent pushes, and hard gets, share transactions
}

var (
	_ broker.Store      = (*Store)(nil)
	_ broker.MultiTaker = (*Store)(nil)
)

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

// Open opens (or creates) the store in dir. It fails if another process
// (or another Store of this one) has the directory open.
func Open(dir string, opts Options) (*Store, error) {
	policy, err := ParseFsync(opts.Fsync)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ShrinkMinSize <= 0 {
		opts.ShrinkMinSize = DefaultShrinkMinSize
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	lock, err := lockFileAt(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := openDB(path, policy)
	if err != nil {
		lock.Release()
		return nil, err
	}
	s := &Store{db: db, dir: dir, lock: lock, log: opts.Logger}
	s.pushes.s, s.takes.s = s, s
	s.takes.gather = true
	s.pushes.gather = true
	if err := s.checkLayout(); err != nil {
		db.Close()
		lock.Release()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if policy == buntdb.EverySecond {
		s.syncer = startSyncer(path, time.Second, opts.Logger)
	}
	s.shrinker = startShrinker(db, path, int64(opts.ShrinkMinSize), shrinkCheck, opts.Logger)
	return s, nil
}

// openDB opens the buntdb file with the fsync policy and shrink threshold.
func openDB(path string, policy buntdb.SyncPolicy) (*buntdb.DB, error) {
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
	cfg.AutoShrinkDisabled = true // the shrinker does it, by what is live
	if err := db.SetConfig(cfg); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// Dir is the directory the store keeps its file in.
func (s *Store) Dir() string { return s.dir }

// FileSize is the size of the store's file now.
func (s *Store) FileSize() (int64, error) {
	fi, err := os.Stat(filepath.Join(s.dir, FileName))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Shrink rewrites the file without what was deleted or overwritten.
func (s *Store) Shrink() error { return mapErr(s.db.Shrink()) }

// Close flushes and closes the file and releases the directory.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.shrinker.close() // before the file closes under it
		err = s.db.Close() // buntdb fsyncs on close
		if s.syncer != nil {
			s.syncer.close()
		}
		s.lock.Release()
	})
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

// scanRecords calls fn for each message record in [lo, hi), in key order,
// at most limit of them (limit <= 0: all), with its queue and id. The
// records are read first and fn runs after, so fn may change the store.
func scanRecords(tx *buntdb.Tx, lo, hi string, limit int, fn func(q string, id uint64, r record) error) error {
	keys, vals, err := scan(tx, lo, hi, limit)
	if err != nil {
		return err
	}
	for i, k := range keys {
		r, err := decodeRecord(vals[i])
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		q, id, err := parseMessageKey(k)
		if err != nil {
			return err
		}
		if err := fn(q, id, r); err != nil {
			return err
		}
	}
	return nil
}
