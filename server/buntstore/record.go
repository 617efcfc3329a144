package buntstore

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// record is a message as stored: ready ones under "r:" keys, leased ones
// under "f:" keys with their lease fields set.
type record struct {
	count    int64
	attempts int
	created  int64 // unix ns
	expires  int64 // unix ns; 0: never
	err      string
	// Lease fields, set while the message is in flight.
	leaseSeq int64  // the count at lease time; part of the lease id
	deadline int64  // unix ns
	released bool   // nacked with a delay: no live lease, waiting to return
	owner    string // the process holding the lease
	value    []byte
}

// Record encodings: version 2 adds the lease's owner; version 1 records
// (written before leases had owners) are still read, with no owner.
const (
	recordV1      = 1
	recordVersion = 2
)

var errCorrupt = errors.New("corrupt record")

func (r *record) encode() string {
	return string(r.appendTo(make([]byte, 0, r.size())))
}

// size is about the length of the record's encoding (at most 48 bytes off).
func (r *record) size() int { return 48 + len(r.err) + len(r.owner) + len(r.value) }

// appendTo appends the record's encoding to b.
func (r *record) appendTo(b []byte) []byte {
	b = append(b, recordVersion)
	flags := byte(0)
	if r.released {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, r.count)
	b = binary.AppendUvarint(b, uint64(r.attempts))
	b = binary.AppendVarint(b, r.created)
	b = binary.AppendVarint(b, r.expires)
	b = binary.AppendVarint(b, r.leaseSeq)
	b = binary.AppendVarint(b, r.deadline)
	b = binary.AppendUvarint(b, uint64(len(r.err)))
	b = append(b, r.err...)
	b = binary.AppendUvarint(b, uint64(len(r.owner)))
	b = append(b, r.owner...)
	return append(b, r.value...)
}

func decodeRecord(s string) (record, error) {
	var r record
	b := []byte(s)
	if len(b) < 2 || b[0] != recordVersion && b[0] != recordV1 || b[1]&^1 != 0 {
		return r, errCorrupt
	}
	version := b[0]
	r.released = b[1]&1 != 0
	b = b[2:]
	var ok bool
	next := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			ok = false
			return 0
		}
		b = b[n:]
		return v
	}
	nextU := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			ok = false
			return 0
		}
		b = b[n:]
		return v
	}
	ok = true
	r.count = next()
	r.attempts = int(nextU())
	r.created = next()
	r.expires = next()
	r.leaseSeq = next()
	r.deadline = next()
	errLen := nextU()
	if !ok || errLen > uint64(len(b)) || r.count < 0 || r.attempts < 0 {
		return r, errCorrupt
	}
	r.err = string(b[:errLen])
	b = b[errLen:]
	if version == recordVersion {
		ownerLen := nextU()
		if !ok || ownerLen > uint64(len(b)) {
			return r, errCorrupt
		}
		r.owner = string(b[:ownerLen])
		b = b[ownerLen:]
	}
	r.value = b
	return r, nil
}

func (r *record) message(queue string, id uint64) broker.Message {
	return broker.Message{
		Queue:    queue,
		ID:       id,
		Value:    r.value,
		Count:    r.count,
		Attempts: r.attempts,
		Created:  fromNanos(r.created),
		Expires:  fromNanos(r.expires),
		Error:    r.err,
	}
}

func (r *record) expired(now int64) bool { return r.expires != 0 && now >= r.expires }

// leaseID names one hand-out of a message: its id, the count at that time
// (so a lease that expired and was handed out again is no longer valid) and
// its creation time in base 36 (so a lease from before a purge never names
// the message that later takes the same id).
func leaseID(id uint64, r *record) string { return string(appendLeaseID(nil, id, r)) }

func appendLeaseID(b []byte, id uint64, r *record) []byte {
	b = strconv.AppendUint(b, id, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, r.leaseSeq, 10)
	b = append(b, '.')
	return strconv.AppendInt(b, r.created, 36)
}

// batchLeaseID is leaseID of a message leased in the batch whose first
// message is first, which it names too: the batch's key (batch.go).
func batchLeaseID(id uint64, r *record, first uint64) string {
	return string(appendBatchLeaseID(nil, id, r, first))
}

func appendBatchLeaseID(b []byte, id uint64, r *record, first uint64) []byte {
	b = append(appendLeaseID(b, id, r), '.')
	return strconv.AppendUint(b, first, 10)
}

// leaseIDs returns the lease ids of leased messages, all cut from one
// string; batched says they are one batch, whose first message is got[0].
func leaseIDs(got []readyMsg, batched bool) []string {
	var b []byte
	ends := make([]int, len(got))
	for i := range got {
		if batched {
			b = appendBatchLeaseID(b, got[i].id, &got[i].rec, got[0].id)
		} else {
			b = appendLeaseID(b, got[i].id, &got[i].rec)
		}
		ends[i] = len(b)
	}
	all := string(b)
	out := make([]string, len(got))
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

// leaseRef is a parsed lease id. The batch it names (batched, first) is
// where the lease was put, not necessarily where it is now: the batch may
// have been broken up since (batch.go).
type leaseRef struct {
	id           uint64
	seq, created int64
	first        uint64
	batched      bool
}

// parseLeaseID splits a lease id; ok is false for anything leaseID or
// batchLeaseID cannot have made.
func parseLeaseID(s string) (ref leaseRef, ok bool) {
	a, rest, found := strings.Cut(s, ".")
	if !found {
		return ref, false
	}
	b, rest, found := strings.Cut(rest, ".")
	if !found {
		return ref, false
	}
	c, d, batched := strings.Cut(rest, ".")
	var err1, err2, err3, err4 error
	ref.id, err1 = strconv.ParseUint(a, 10, 64)
	ref.seq, err2 = strconv.ParseInt(b, 10, 64)
	ref.created, err3 = strconv.ParseInt(c, 36, 64)
	if batched {
		ref.first, err4 = strconv.ParseUint(d, 10, 64)
		ref.batched = true
	}
	return ref, err1 == nil && err2 == nil && err3 == nil && err4 == nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
