package buntstore

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

// sameRecord reports whether two records hold the same fields; a nil and
// an empty value are the same.
func sameRecord(a, b record) bool {
	av, bv := a.value, b.value
	a.value, b.value = nil, nil
	return reflect.DeepEqual(a, b) && bytes.Equal(av, bv)
}

func FuzzRecordRoundTrip(f *testing.F) {
	f.Add(int64(0), 0, int64(0), int64(0), int64(0), int64(0), false, "", []byte(nil), "")
	f.Add(int64(3), 2, int64(1_700_000_000_000_000_000), int64(1_700_000_060_000_000_000),
		int64(3), int64(1_700_000_030_000_000_000), true, "worker crashed", []byte("hello"), "p1a2b3")
	f.Add(int64(math.MaxInt64), 1<<40, int64(math.MaxInt64), int64(-1), int64(math.MinInt64),
		int64(math.MaxInt64), false, "\xff\x00", []byte{0, 1, 0xff}, "\x00")
	f.Fuzz(func(t *testing.T, count int64, attempts int, created, expires, leaseSeq, deadline int64,
		released bool, errText string, value []byte, owner string) {
		if count < 0 || attempts < 0 {
			return // not a record the store writes: decodeRecord refuses it
		}
		r := record{
			count: count, attempts: attempts, created: created, expires: expires,
			err: errText, leaseSeq: leaseSeq, deadline: deadline, released: released, owner: owner, value: value,
		}
		got, err := decodeRecord(r.encode())
		if err != nil || !sameRecord(got, r) {
			t.Fatalf("decodeRecord(encode(r)) = %+v, %v; want %+v, nil", got, err, r)
		}
	})
}

// FuzzDecodeRecord feeds arbitrary bytes to the decoder, as a damaged file
// would: it never panics, refuses with errCorrupt, and what it accepts
// encodes to a form that decodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	full := record{count: 2, attempts: 1, created: 1e18, expires: 2e18, err: "boom",
		leaseSeq: 2, deadline: 15e17, released: true, owner: "p0123", value: []byte("payload")}
	f.Add([]byte(full.encode()))
	f.Add([]byte{recordV1, 0, 4, 2, 0, 0, 0, 0, 0, 'v'}) // a version 1 record, without an owner
	f.Add([]byte((&record{}).encode()))
	f.Add([]byte{})
	f.Add([]byte{recordVersion})
	f.Add([]byte{recordVersion, 0, 0x80})
	f.Add([]byte{recordVersion, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(string(data))
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeRecord(%x) = %v, want errCorrupt", data, err)
			}
			return
		}
		again, err := decodeRecord(r.encode())
		if err != nil || !sameRecord(again, r) {
			t.Fatalf("decodeRecord(%x) = %+v, re-encoded and decoded = %+v, %v; want the same record, nil", data, r, again, err)
		}
	})
}

// FuzzEntryIDs feeds deadline index entries as a damaged file might hold
// them: entryIDs either fails with errCorrupt or returns ids that encode
// back to the same entry.
func FuzzEntryIDs(f *testing.F) {
	key := timeKey(deadlinePrefix, 1_700_000_000_000_000_000, "jobs", 7)
	f.Add("")
	f.Add(encodeIDs([]uint64{7, 8, 9}))
	f.Add(encodeIDs([]uint64{math.MaxUint64}))
	f.Add("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")
	f.Add("\x80")
	f.Fuzz(func(t *testing.T, val string) {
		ids, err := entryIDs(key, val)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("entryIDs(%q) = %v, want errCorrupt", val, err)
			}
			return
		}
		if val == "" {
			if len(ids) != 1 || ids[0] != 7 {
				t.Fatalf("entryIDs of an empty value = %v, want the key's id 7", ids)
			}
			return
		}
		if len(ids) == 0 {
			t.Fatalf("entryIDs(%q) named no id", val)
		}
		if _, err := entryIDs(key, encodeIDs(ids)); err != nil {
			t.Fatalf("entryIDs(encodeIDs(%v)) = %v", ids, err)
		}
	})
}

// FuzzDecodeBatch feeds arbitrary bytes to the batch decoder, as a damaged
// file would: it never panics, refuses with errCorrupt, and what it
// accepts encodes to a form that decodes to the same batch.
func FuzzDecodeBatch(f *testing.F) {
	r := record{count: 2, created: 1e18, leaseSeq: 2, value: []byte("payload")}
	b := batch{deadline: 15e17, owner: "p0123", ids: []uint64{3, 7}, recs: []string{r.encode(), (&record{}).encode()}}
	f.Add([]byte(b.encode()))
	f.Add([]byte{batchVersion, 0, 0, 1, 1, 0})
	f.Add([]byte{batchVersion, 0, 0, 2, 5, 0, 5, 0}) // ids not ascending
	f.Add([]byte{})
	f.Add([]byte{batchVersion, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBatch(string(data))
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeBatch(%x) = %v, want errCorrupt", data, err)
			}
			return
		}
		if again, err := decodeBatch(b.encode()); err != nil || !reflect.DeepEqual(again, b) {
			t.Fatalf("decodeBatch(%x) = %+v; its encoding decodes to %+v, %v", data, b, again, err)
		}
		for j := range b.recs {
			seq, created, ok := recordHead(b.recs[j])
			if r, err := decodeRecord(b.recs[j]); err == nil && (!ok || seq != r.leaseSeq || created != r.created) {
				t.Fatalf("recordHead(%x) = %d, %d, %v; the record says %d, %d", b.recs[j], seq, created, ok, r.leaseSeq, r.created)
			}
		}
	})
}

// FuzzParseLeaseID: any text parses without a panic, and what leaseID and
// batchLeaseID make parses back to what they were made of.
func FuzzParseLeaseID(f *testing.F) {
	f.Add(uint64(12), int64(1), int64(1_900_000_000_000_000_000), uint64(3), "12.1.abc")
	f.Add(uint64(0), int64(0), int64(0), uint64(0), "1.2.3.4")
	f.Add(uint64(1<<63), int64(-1), int64(-5), uint64(1<<64-1), "..")
	f.Fuzz(func(t *testing.T, id uint64, seq, created int64, first uint64, text string) {
		parseLeaseID(text)
		r := record{leaseSeq: seq, created: created}
		ref, ok := parseLeaseID(leaseID(id, &r))
		if want := (leaseRef{id: id, seq: seq, created: created}); !ok || ref != want {
			t.Fatalf("parseLeaseID(leaseID) = %+v, %v; want %+v", ref, ok, want)
		}
		ref, ok = parseLeaseID(batchLeaseID(id, &r, first))
		if want := (leaseRef{id: id, seq: seq, created: created, first: first, batched: true}); !ok || ref != want {
			t.Fatalf("parseLeaseID(batchLeaseID) = %+v, %v; want %+v", ref, ok, want)
		}
	})
}
