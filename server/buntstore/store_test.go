package buntstore_test

import (
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/broker/storetest"
	"github.com/tabreduce/tabreduce/server/buntstore"
)

func open(t *testing.T, dir string) *buntstore.Store {
	t.Helper()
	s, err := buntstore.Open(dir, buntstore.Options{Fsync: buntstore.FsyncNever})
	if err != nil {
		t.Fatalf("open store in %s: %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) broker.Store { return open(t, t.TempDir()) },
		Reopen: func(t *testing.T, s broker.Store) broker.Store {
			dir := s.(*buntstore.Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatalf("close before reopening: %v", err)
			}
			return open(t, dir)
		},
	})
}
