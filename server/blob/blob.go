// Package blob is the store of the engine's large, write-once objects: job
// inputs, spilled map runs and uploaded modules. An object is written
// whole (Put) and becomes visible under its key only once it is complete;
// it is read whole or by byte range (Open), and deleted by key prefix.
// That is all an object store such as S3 offers too (PUT, ranged GET,
// HEAD, DELETE of a listed prefix), so a backend for one stays small.
//
// Dir keeps objects as files in a directory (one server's own);
// server/redisstore's Blobs keeps them in Redis in chunks, shared by every
// server of a service. The conformance suite in blob/blobtest runs against
// both.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Store holds objects under keys.
type Store interface {
	// Put stores what r yields under key, replacing any object there. At
	// most limit bytes are read: a longer r fails with ErrTooLarge and
	// stores nothing. The object is visible only once Put returns nil, and
	// a crash during Put leaves the earlier object (or none).
	Put(ctx context.Context, key string, r io.Reader, limit int64) (int64, error)
	// Open reads n bytes of the object from off (n < 0: to its end). It
	// fails with ErrNotFound for a missing object and ErrRange for a range
	// beyond its end.
	Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Size is the object's length, or ErrNotFound.
	Size(ctx context.Context, key string) (int64, error)
	// DeletePrefix deletes every object whose key starts with prefix and
	// says how many there were.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
}

// Errors callers branch on.
var (
	ErrNotFound = errors.New("blob not found")
	ErrTooLarge = errors.New("blob too large")
	ErrRange    = errors.New("blob range out of bounds")
	ErrInvalid  = errors.New("invalid blob key")
)

// MaxKey is the longest key.
const MaxKey = 512

// CheckKey validates a key: 1 to MaxKey bytes of UTF-8 without control
// characters, made of '/'-separated segments none of which is empty, "."
// or "..", so that a key is also a safe relative path.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKey || !utf8.ValidString(key) {
		return fmt.Errorf("%w: %q", ErrInvalid, truncate(key))
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: %q holds %U", ErrInvalid, truncate(key), r)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, . or .. segment", ErrInvalid, truncate(key))
		}
	}
	return nil
}

// CheckRange validates a range of an object of size bytes and returns its
// length.
func CheckRange(size, off, n int64) (int64, error) {
	if off < 0 || off > size || (n >= 0 && off+n > size) {
		return 0, fmt.Errorf("%w: %d+%d of %d bytes", ErrRange, off, n, size)
	}
	if n < 0 {
		n = size - off
	}
	return n, nil
}

// ReadAll reads a whole object.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	r, err := s.Open(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
