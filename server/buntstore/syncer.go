package buntstore

import (
	"log/slog"
	"os"
	"sync"
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
	stop chan struct{}
	wg   sync.WaitGroup

	f  *os.File
	fi os.FileInfo
}

func startSyncer(path string, every time.Duration, log *slog.Logger) *syncer {
	s := &syncer{path: path, log: log, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.loop(every)
	return s
}

func (s *syncer) loop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.sync()
			if s.f != nil {
				s.f.Close()
			}
			return
		case <-t.C:
			s.sync()
		}
	}
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
func (s *syncer) close() {
	close(s.stop)
	s.wg.Wait()
}
