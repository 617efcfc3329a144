package buntstore

import (
	"log/slog"
	"os"
	"time"

	"github.com/tidwall/buntdb"
)

// shrinker rewrites the store's file when it holds much more than is live:
// buntdb appends every change, so a queue pushed to and purged leaves its
// bytes in the file until the file is rewritten. buntdb's own rule (rewrite
// when the file doubles since the last rewrite) can leave a file that held a
// burst of queues at twice that burst's size after they are all gone; this
// one judges by what is live instead. Live bytes are estimated from the
// number of keys and the bytes per key at the last rewrite; the file is
// rewritten when it is over minSize and over twice the estimate.
type shrinker struct {
	db      *buntdb.DB
	path    string
	minSize int64
	log     *slog.Logger
	loop    *loop

	bytesPerKey float64 // at the last rewrite
}

// defaultBytesPerKey is the estimate before any rewrite has measured one.
const defaultBytesPerKey = 128

func startShrinker(db *buntdb.DB, path string, minSize int64, every time.Duration, log *slog.Logger) *shrinker {
	s := &shrinker{db: db, path: path, minSize: minSize, log: log, bytesPerKey: defaultBytesPerKey}
	s.loop = startLoop(every, s.check, nil)
	return s
}

// check rewrites the file if it is mostly dead.
func (s *shrinker) check() {
	fi, err := os.Stat(s.path)
	if err != nil {
		return
	}
	keys := 0
	if err := s.db.View(func(tx *buntdb.Tx) error {
		keys, err = tx.Len()
		return err
	}); err != nil {
		return
	}
	live := float64(keys) * s.bytesPerKey
	if fi.Size() <= s.minSize || float64(fi.Size()) <= 2*live {
		return
	}
	if err := s.db.Shrink(); err != nil {
		if err != buntdb.ErrShrinkInProcess && err != buntdb.ErrDatabaseClosed {
			s.log.Error("rewrite the store file", "path", s.path, "err", err)
		}
		return
	}
	if after, err := os.Stat(s.path); err == nil && keys > 0 {
		s.bytesPerKey = max(float64(after.Size())/float64(keys), 1)
		s.log.Debug("store file rewritten", "before", fi.Size(), "after", after.Size(), "keys", keys)
	}
}

func (s *shrinker) close() { s.loop.close() }
