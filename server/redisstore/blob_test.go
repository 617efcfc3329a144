package redisstore_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server/blob"
	"github.com/tabreduce/tabreduce/server/blob/blobtest"
)

func TestBlobConformance(t *testing.T) {
	url := redisServer(t).URL
	blobtest.Run(t, func(t *testing.T) blob.Store { return open(t, url(newPrefix())).Blobs() })
}

func TestBlobConformanceCluster(t *testing.T) {
	url := redisCluster(t).URL
	blobtest.Run(t, func(t *testing.T) blob.Store { return open(t, url(newPrefix())).Blobs() })
}

// A reader of an object that is replaced meanwhile reads the old one to
// its end: replaced chunks live on for a minute.
func TestBlobReaderOutlivesAReplace(t *testing.T) {
	b := open(t, redisServer(t).URL(newPrefix())).Blobs()
	ctx := t.Context()
	old := bytes.Repeat([]byte("old."), 1<<19) // two chunks
	if _, err := b.Put(ctx, "m", bytes.NewReader(old), 10<<20); err != nil {
		t.Fatal(err)
	}
	r, err := b.Open(ctx, "m", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 10)
	if _, err := io.ReadFull(r, first); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "m", strings.NewReader("new"), 10); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the old version after a replace: %v", err)
	}
	if got := append(first, rest...); !bytes.Equal(got, old) {
		t.Errorf("old reader got %d bytes, want the old %d", len(got), len(old))
	}
	if got, _ := blob.ReadAll(ctx, b, "m"); string(got) != "new" {
		t.Errorf("a new read = %q, want new", got)
	}
}
