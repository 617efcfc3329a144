package buntstore_test

import (
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/broker/storetest"
	"github.com/tabreduce/tabreduce/server/buntstore"
)

func open(t *testing.T, dir string) broker.Store {
	t.Helper()
	s, err := buntstore.Open(dir, buntstore.Options{Fsync: buntstore.FsyncNever})
	if err != nil {
		t.Fatalf("open store in %s: %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) broker.Store { return open(t, t.TempDir()) })
}

func TestReopen(t *testing.T) {
	storetest.ExerciseReopen(t, open)
}
