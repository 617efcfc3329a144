package buntstore

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// v1Record encodes a message record as layout 1 wrote it: no owner.
func v1Record(count int64, created, expires, leaseSeq, deadline int64, value string) string {
	b := []byte{recordV1, 0}
	b = binary.AppendVarint(b, count)
	b = binary.AppendUvarint(b, 0)
	b = binary.AppendVarint(b, created)
	b = binary.AppendVarint(b, expires)
	b = binary.AppendVarint(b, leaseSeq)
	b = binary.AppendVarint(b, deadline)
	b = binary.AppendUvarint(b, 0)
	return string(append(b, value...))
}

// writeFile writes a store file of the given keys, as an older version
// might have left it.
func writeFile(t *testing.T, dir string, entries map[string]string) {
	t.Helper()
	db, err := buntdb.Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *buntdb.Tx) error {
		for k, v := range entries {
			if _, _, err := tx.Set(k, v, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A file written in layout 1 opens: its messages, leases and indexes are
// rewritten in the layout of today, and read back whole.
func TestLayoutOneIsUpgraded(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	hour := int64(time.Hour)
	m := newMeta(now)
	m.LastID, m.Length, m.InFlight, m.Pushed = 3, 2, 1, 3
	writeFile(t, dir, map[string]string{
		"q:jobs":                  m.encode(),
		"r:jobs:0000000000000001": v1Record(0, now, 0, 0, 0, "one"),
		"r:jobs:0000000000000003": v1Record(0, now, now+hour, 0, 0, "three"),
		"x:" + hex16(uint64(now+hour)) + ":jobs:0000000000000003": "",
		"f:jobs:0000000000000002":                                 v1Record(1, now, 0, 1, now+hour, "two"),
		"d:" + hex16(uint64(now+hour)) + ":jobs:0000000000000002": "",
		"k:config": `j{"a":1}`,
	})

	s, err := Open(dir, Options{Fsync: FsyncNever})
	if err != nil {
		t.Fatalf("open a layout 1 file: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	if v, err := s.KVGet(ctx, "config"); err != nil || string(v.Data) != `{"a":1}` {
		t.Errorf("key/value after the upgrade: %q, %v", v.Data, err)
	}
	res, err := s.LeaseRecover(ctx, broker.LeaseRecoverParams{Now: time.Unix(0, now), Limit: 10})
	if err != nil || res.Released["jobs"] != 1 {
		t.Fatalf("recover the layout 1 lease: %+v, %v", res, err)
	}
	got := takeAll(t, s, "jobs", time.Unix(0, now))
	if want := []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Errorf("messages after the upgrade: %q, want %q", got, want)
	}
	reaped, err := s.Reap(ctx, broker.ReapParams{Now: time.Unix(0, now+2*hour), Limit: 10})
	if err != nil || reaped.Expired != 0 {
		t.Errorf("the TTL index entry of a taken message: %+v, %v", reaped, err)
	}
}

// A layout this version does not know is refused, and the file left alone.
func TestUnknownLayoutIsRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := buntdb.Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *buntdb.Tx) error { _, _, err := tx.Set(layoutKey, "9", nil); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(dir, Options{Fsync: FsyncNever}); err == nil {
		s.Close()
		t.Fatal("opened a file of layout 9")
	}
}

// One directory, one store: a second Open waits for nobody and fails.
func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Fsync: FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(dir, Options{Fsync: FsyncNever}); !errors.Is(err, ErrLocked) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{Fsync: FsyncNever})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

// A file written in layout 2 (one deadline index entry a lease, named by
// its key alone) opens as it is, is marked layout 3, and its leases are
// acked and reaped exactly.
func TestLayoutTwoIsRead(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	hour := int64(time.Hour)
	m := newMeta(now)
	m.LastID, m.InFlight, m.Pushed = 2, 2, 2
	leased := []record{
		{count: 1, created: now, leaseSeq: 1, deadline: now + hour, owner: "gone", value: []byte("one")},
		{count: 1, created: now, leaseSeq: 1, deadline: now + hour, owner: "gone", value: []byte("two")},
	}
	entries := map[string]string{layoutKey: layoutV2, metaKey("jobs"): m.encode()}
	for i := range leased {
		id := uint64(i + 1)
		entries[flightKey("jobs", id)] = leased[i].encode()
		entries[timeKey(deadlinePrefix, now+hour, "jobs", id)] = ""
	}
	writeFile(t, dir, entries)

	s := openMarked(t, dir)
	ctx := t.Context()
	if unknown, err := s.LeaseAck(ctx, "jobs", []string{leaseID(1, &leased[0])}); err != nil || len(unknown) != 0 {
		t.Fatalf("ack the layout 2 lease of message 1: unknown %q, %v", unknown, err)
	}
	res, err := s.Reap(ctx, broker.ReapParams{Now: time.Unix(0, now+hour), Limit: 10})
	if err != nil || res.Requeued["jobs"] != 1 || res.More {
		t.Fatalf("reap at the layout 2 leases' deadline: %+v, %v; want message 2 requeued", res, err)
	}
	msg, err := s.QueueTake(ctx, "jobs", time.Unix(0, now+hour))
	if err != nil || msg.ID != 2 || string(msg.Value) != "two" {
		t.Errorf("take after the reap: %+v, %v; want message 2", msg, err)
	}
	err = s.db.View(func(tx *buntdb.Tx) error {
		keys, _, err := scan(tx, deadlinePrefix, prefixEnd(deadlinePrefix), 0)
		if err == nil && len(keys) != 0 {
			t.Errorf("deadline index entries left after the reap: %q", keys)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A file written in layout 3 (an f: record a leased message, one deadline
// index entry listing a leased batch) opens as it is, is marked layout 4,
// and its leases are acked, released and reaped exactly.
func TestLayoutThreeIsRead(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	hour := int64(time.Hour)
	m := newMeta(now)
	m.LastID, m.InFlight, m.Pushed, m.Delivered = 3, 3, 3, 3
	entries := map[string]string{layoutKey: layoutV3, metaKey("jobs"): m.encode()}
	var leased []record
	for id := uint64(1); id <= 3; id++ {
		r := record{count: 1, created: now, leaseSeq: 1, deadline: now + hour, owner: "held", value: []byte{'0' + byte(id)}}
		leased = append(leased, r)
		entries[flightKey("jobs", id)] = r.encode()
	}
	entries[timeKey(deadlinePrefix, now+hour, "jobs", 1)] = encodeIDs([]uint64{1, 2, 3})
	writeFile(t, dir, entries)

	s := openMarked(t, dir)
	ctx := t.Context()
	if unknown, err := s.LeaseAck(ctx, "jobs", []string{leaseID(1, &leased[0])}); err != nil || len(unknown) != 0 {
		t.Fatalf("ack the layout 3 lease of message 1: unknown %q, %v", unknown, err)
	}
	if unknown, err := s.LeaseRelease(ctx, "jobs", []string{leaseID(2, &leased[1])}); err != nil || len(unknown) != 0 {
		t.Fatalf("release the layout 3 lease of message 2: unknown %q, %v", unknown, err)
	}
	res, err := s.Reap(ctx, broker.ReapParams{Now: time.Unix(0, now+hour), Limit: 10})
	if err != nil || res.Requeued["jobs"] != 1 || res.More {
		t.Fatalf("reap at the layout 3 leases' deadline: %+v, %v; want message 3 requeued", res, err)
	}
	got := takeAll(t, s, "jobs", time.Unix(0, now+hour))
	if want := []string{"2", "3"}; !slices.Equal(got, want) {
		t.Errorf("messages after the ack, release and reap: %q, want %q", got, want)
	}
	wantKeys(t, s, "after all", map[string]int{})
}

// openMarked opens the store in dir and checks that the file is marked
// with this package's layout.
func openMarked(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Fsync: FsyncNever})
	if err != nil {
		t.Fatalf("open an older layout's file: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(layoutKey)
		if err == nil && v != layoutVersion {
			t.Errorf("layout after Open = %q, want %q", v, layoutVersion)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// takeAll takes every message of q and returns their values.
func takeAll(t *testing.T, s *Store, q string, now time.Time) []string {
	t.Helper()
	var got []string
	for {
		msg, err := s.QueueTake(t.Context(), q, now)
		if errors.Is(err, broker.ErrQueueEmpty) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(msg.Value))
	}
}
