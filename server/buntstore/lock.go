package buntstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockName is the lock file that keeps a second process (or a second Store
// of this one) from opening the same directory.
const lockName = "tabreduce.db.lock"

// ErrLocked means another process holds the store's directory.
var ErrLocked = errors.New("the data directory is in use by another tabreduce process")

// DirLock is an exclusive lock on a file, held while a directory is in use.
type DirLock struct {
	f *os.File
}

// LockDir creates dir if needed and takes the lock file name in it without
// waiting: it fails with ErrLocked if another process (or another lock of
// this one) holds it.
func LockDir(dir, name string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return lockFileAt(filepath.Join(dir, name))
}

func lockFileAt(path string) (*DirLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return &DirLock{f: f}, nil
}

// Release drops the lock (closing the file releases it).
func (l *DirLock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
