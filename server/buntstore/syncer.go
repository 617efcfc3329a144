package buntstore

import (
	"log/slog"
	"os"
	"time"
)

// syncer fsyncs the store's file once a second for the everysec policy.
//
// buntdb's own everysec sync holds its write lock for the whole fsync, so
// every write waits behind the disk, which showed as the push p99. This
// syncer fsyncs through a descriptor of its own instead (on Linux fsync
// flushes the file, whichever descriptor names it), outside buntdb's lock.
// buntdb rewrites the file when it shrinks it; the syncer notices the new
// file by its identity and reopens.
type syncer struct {
	path string
	log  *slog.Logger
	loop *loop

	f  *os.File
	fi os.FileInfo
}

func startSyncer(path string, every time.Duration, log *slog.Logger) *syncer {
	s := &syncer{path: path, log: log}
	s.loop = startLoop(every, s.sync, func() {
		s.sync()
		if s.f != nil {
			s.f.Close()
		}
	})
	return s
}

// sync fsyncs the current file, reopening it if buntdb replaced it.
func (s *syncer) sync() {
	cur, err := os.Stat(s.path)
	if err != nil {
		s.log.Error("fsync: stat store file", "path", s.path, "err", err)
		return
	}
	if s.f == nil || !os.SameFile(cur, s.fi) {
		if s.f != nil {
			s.f.Close()
		}
		if s.f, err = os.Open(s.path); err != nil {
			s.log.Error("fsync: open store file", "path", s.path, "err", err)
			return
		}
		s.fi = cur
	}
	if err := s.f.Sync(); err != nil {
		s.log.Error("fsync store file", "path", s.path, "err", err)
	}
}

// close stops the syncer after a last fsync.
func (s *syncer) close() { s.loop.close() }
