package redisstore

import (
	"bytes"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Outbox entries are read back from Redis: whatever they hold, decoding
// gives an error or a part whose encoding decodes to the same part.
func FuzzDecodePart(f *testing.F) {
	samples := []*part{
		{now: 1},
		{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
			dels:   []broker.MessageRef{{Queue: "q", ID: 3}},
			pushes: []broker.QueuePush{{Queue: "out", Messages: []broker.NewMessage{{Value: []byte("a\x00b")}, {Value: nil, TTL: time.Minute}}}},
			kvSet:  []broker.KVEntry{{Key: "k", Value: broker.KVValue{Data: []byte(`{"x":1}`)}, TTL: time.Second}},
			kvDel:  []string{"gone"},
			recSet: []broker.Record{{Key: "job/1", Value: []byte("r")}},
			recDel: []string{"job/2"}},
	}
	for _, p := range samples {
		f.Add(p.encode())
	}
	f.Add([]byte{partVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePart(b)
		if err != nil {
			return
		}
		again := p.encode()
		q, err := decodePart(again)
		if err != nil {
			t.Fatalf("the encoding of a decoded entry does not decode: %v", err)
		}
		if third := q.encode(); !bytes.Equal(third, again) {
			t.Fatalf("decode and encode are not inverse:\n%x\n%x", again, third)
		}
	})
}

// Event texts arrive from the pub/sub channel, which anyone with access
// to the Redis may publish to.
func FuzzDecodeEvents(f *testing.F) {
	f.Add("origin\x00pqueue\x00sother\x00u\x00f")
	f.Add("")
	f.Add("\x00p")
	f.Fuzz(func(t *testing.T, blob string) {
		origin, evs, err := decodeEvents(blob)
		if err != nil || blob == "" {
			return
		}
		if origin == "" || len(evs) == 0 {
			t.Fatalf("decodeEvents(%q) = %q, %v with no error", blob, origin, evs)
		}
		for _, ev := range evs {
			if ev.Kind < broker.EventPush || ev.Kind > broker.EventFlush {
				t.Fatalf("decodeEvents(%q) made kind %d", blob, ev.Kind)
			}
		}
	})
}

// Lease ids come from clients.
func FuzzParseLeaseID(f *testing.F) {
	f.Add(leaseID(3, 2, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()))
	f.Add("1.1.0")
	f.Add("99.9")
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok := parseLeaseID(s)
		if !ok {
			return
		}
		if len(ref.created) != 20 || ref.id == "0" || ref.seq == "0" {
			t.Fatalf("parseLeaseID(%q) = %+v", s, ref)
		}
	})
}
