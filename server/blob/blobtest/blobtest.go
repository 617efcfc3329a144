// Package blobtest is the conformance suite of blob.Store: every backend
// runs it unchanged from its own test with a constructor of fresh, empty
// stores.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/tabreduce/tabreduce/server/blob"
)

// Run runs every case on a store of its own.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	t.Helper()
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

type storeCase struct {
	name string
	run  func(t *testing.T, s blob.Store)
}

// big is n bytes of every byte value in turn, so a lost or moved byte
// shows.
func big(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func put(t *testing.T, s blob.Store, key string, b []byte) {
	t.Helper()
	n, err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)))
	if err != nil || n != int64(len(b)) {
		t.Fatalf("Put %s (%d bytes) = %d, %v", key, len(b), n, err)
	}
}

func read(t *testing.T, s blob.Store, key string, off, n int64) []byte {
	t.Helper()
	r, err := s.Open(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Open %s %d+%d: %v", key, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s %d+%d: %v", key, off, n, err)
	}
	return b
}

func same(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes, want %d (first difference at %d)", what, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// sizes straddle the chunk boundaries a chunked backend may use.
var sizes = []int{0, 1, 4095, 65536, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 12345}

func cases() []storeCase {
	ctx := context.Background()
	return []storeCase{
		{"RoundTrip", func(t *testing.T, s blob.Store) {
			for _, n := range sizes {
				key := fmt.Sprintf("jobs/j1/input-%d", n)
				put(t, s, key, big(n))
				same(t, key, read(t, s, key, 0, -1), big(n))
				if got, err := s.Size(ctx, key); err != nil || got != int64(n) {
					t.Errorf("Size %s = %d, %v; want %d", key, got, err, n)
				}
			}
		}},
		{"Ranges", func(t *testing.T, s blob.Store) {
			b := big(3<<20 + 12345)
			put(t, s, "in", b)
			for _, r := range [][2]int64{{0, 0}, {0, 10}, {1<<20 - 3, 6}, {1 << 20, 1 << 20}, {5, 2<<20 + 7}, {int64(len(b)) - 1, 1}, {int64(len(b)), 0}, {1000, -1}} {
				want := b[r[0]:]
				if r[1] >= 0 {
					want = b[r[0] : r[0]+r[1]]
				}
				same(t, fmt.Sprintf("range %d+%d", r[0], r[1]), read(t, s, "in", r[0], r[1]), want)
			}
			for _, r := range [][2]int64{{-1, 1}, {0, int64(len(b)) + 1}, {int64(len(b)) + 1, -1}} {
				if _, err := s.Open(ctx, "in", r[0], r[1]); !errors.Is(err, blob.ErrRange) {
					t.Errorf("Open of range %d+%d: %v, want ErrRange", r[0], r[1], err)
				}
			}
		}},
		{"Missing", func(t *testing.T, s blob.Store) {
			if _, err := s.Open(ctx, "nosuch", 0, -1); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Open of a missing object: %v, want ErrNotFound", err)
			}
			if _, err := s.Size(ctx, "nosuch"); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Size of a missing object: %v, want ErrNotFound", err)
			}
		}},
		{"Replace", func(t *testing.T, s blob.Store) {
			put(t, s, "m", big(2<<20))
			put(t, s, "m", []byte("short"))
			same(t, "after replacing", read(t, s, "m", 0, -1), []byte("short"))
		}},
		{"TooLargeStoresNothing", func(t *testing.T, s blob.Store) {
			put(t, s, "k", []byte("old"))
			_, err := s.Put(ctx, "k", bytes.NewReader(big(2<<20)), 1<<20)
			if !errors.Is(err, blob.ErrTooLarge) {
				t.Fatalf("Put over the limit: %v, want ErrTooLarge", err)
			}
			same(t, "after a refused Put", read(t, s, "k", 0, -1), []byte("old"))
			if _, err := s.Put(ctx, "new", bytes.NewReader(big(10)), 9); !errors.Is(err, blob.ErrTooLarge) {
				t.Errorf("Put of 10 bytes with limit 9: %v", err)
			}
			if _, err := s.Size(ctx, "new"); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("a refused Put left an object: %v", err)
			}
		}},
		{"FailedReaderStoresNothing", func(t *testing.T, s blob.Store) {
			r := io.MultiReader(bytes.NewReader(big(1<<20+5)), errReader{})
			if _, err := s.Put(ctx, "k", r, 10<<20); err == nil {
				t.Fatal("Put from a failing reader succeeded")
			}
			if _, err := s.Size(ctx, "k"); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("a failed Put left an object: %v", err)
			}
		}},
		{"DeletePrefix", func(t *testing.T, s blob.Store) {
			for _, k := range []string{"jobs/a/input-0", "jobs/a/runs/r1", "jobs/ab/input-0", "jobs/b/x", "modules/m.wasm"} {
				put(t, s, k, []byte(k))
			}
			n, err := s.DeletePrefix(ctx, "jobs/a/")
			if err != nil || n != 2 {
				t.Fatalf("DeletePrefix jobs/a/ = %d, %v; want 2", n, err)
			}
			for _, k := range []string{"jobs/a/input-0", "jobs/a/runs/r1"} {
				if _, err := s.Size(ctx, k); !errors.Is(err, blob.ErrNotFound) {
					t.Errorf("%s after its prefix was deleted: %v", k, err)
				}
			}
			for _, k := range []string{"jobs/ab/input-0", "jobs/b/x", "modules/m.wasm"} {
				same(t, k+" kept", read(t, s, k, 0, -1), []byte(k))
			}
			if n, err := s.DeletePrefix(ctx, "nothing/"); err != nil || n != 0 {
				t.Errorf("DeletePrefix of nothing = %d, %v", n, err)
			}
		}},
		{"BadKeys", func(t *testing.T, s blob.Store) {
			for _, k := range []string{"", "../x", "a//b", "a/./b", "/abs", "a/", "a\x00b", "a\\b", strings.Repeat("k", blob.MaxKey+1)} {
				if _, err := s.Put(ctx, k, strings.NewReader("x"), 10); !errors.Is(err, blob.ErrInvalid) {
					t.Errorf("Put %q: %v, want ErrInvalid", k, err)
				}
				if _, err := s.Open(ctx, k, 0, -1); !errors.Is(err, blob.ErrInvalid) {
					t.Errorf("Open %q: %v, want ErrInvalid", k, err)
				}
			}
		}},
		{"ConcurrentPutsOfOneKey", func(t *testing.T, s blob.Store) {
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					b := bytes.Repeat([]byte{byte('a' + i)}, 1<<20+100)
					if _, err := s.Put(ctx, "k", bytes.NewReader(b), int64(len(b))); err != nil {
						t.Errorf("Put: %v", err)
					}
				})
			}
			wg.Wait()
			got := read(t, s, "k", 0, -1)
			if len(got) != 1<<20+100 || !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) {
				t.Errorf("after concurrent Puts the object mixes them (%d bytes)", len(got))
			}
		}},
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("reader broke") }
