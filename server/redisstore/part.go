package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// part is what one commit group changes in one slot. A group's primary
// part holds its lease acks; its other parts go into the primary slot's
// outbox in the same script, and are applied to their own slots after
// (outbox.go).
type part struct {
	tag    string // the slot's hash tag (keys.tag or keys.kvTag)
	group  string // the group of a queue or record slot
	kv     bool   // the key/value slot
	now    int64  // the commit's time (ns): created and expiry of its pushes
	acks   []broker.LeaseRef
	dels   []broker.MessageRef
	pushes []broker.QueuePush
	kvSet  []broker.KVEntry
	kvDel  []string
	recSet []broker.Record
	recDel []string
}

func (p *part) empty() bool {
	return len(p.acks)+len(p.dels)+len(p.pushes)+len(p.kvSet)+len(p.kvDel)+len(p.recSet)+len(p.recDel) == 0
}

// Limits of a decoded outbox entry: what no commit the broker makes
// comes near, so that a corrupt entry cannot make the decoder allocate
// without bound.
const (
	maxPartItems = 1 << 20
	maxPartBytes = 1 << 30
)

const partVersion = 1

// encode writes a part for the outbox: the version, the time, then each
// list as its length and its items, strings length-prefixed. Acks never
// travel: they stay in the primary part.
func (p *part) encode() []byte {
	b := []byte{partVersion}
	b = binary.AppendVarint(b, p.now)
	str := func(s []byte) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	n := func(v int) { b = binary.AppendUvarint(b, uint64(v)) }
	n(len(p.dels))
	for _, d := range p.dels {
		str([]byte(d.Queue))
		b = binary.AppendUvarint(b, d.ID)
	}
	n(len(p.pushes))
	for _, q := range p.pushes {
		str([]byte(q.Queue))
		n(len(q.Messages))
		for _, m := range q.Messages {
			str(m.Value)
			b = binary.AppendVarint(b, int64(m.TTL))
		}
	}
	n(len(p.kvSet))
	for _, e := range p.kvSet {
		str([]byte(e.Key))
		str(encodeKV(e.Value))
		b = binary.AppendVarint(b, int64(e.TTL))
	}
	n(len(p.kvDel))
	for _, k := range p.kvDel {
		str([]byte(k))
	}
	n(len(p.recSet))
	for _, r := range p.recSet {
		str([]byte(r.Key))
		str(r.Value)
	}
	n(len(p.recDel))
	for _, k := range p.recDel {
		str([]byte(k))
	}
	return b
}

var errPart = errors.New("bad outbox entry")

// partReader reads what encode wrote, stopping at the first fault.
type partReader struct {
	b     []byte
	err   error
	items int
}

func (r *partReader) fail() {
	if r.err == nil {
		r.err = errPart
	}
}

func (r *partReader) uvarint() uint64 { return next(r, binary.Uvarint) }
func (r *partReader) varint() int64   { return next(r, binary.Varint) }

// next reads one number with read, or records the fault.
func next[T int64 | uint64](r *partReader, read func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := read(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a list length and checks it against what is left.
func (r *partReader) count() int {
	v := r.uvarint()
	r.items += int(min(v, maxPartItems+1))
	if v > uint64(len(r.b)) || r.items > maxPartItems {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *partReader) bytes() []byte {
	v := r.uvarint()
	if r.err != nil || v > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:v:v]
	r.b = r.b[v:]
	return s
}

func (r *partReader) str() string { return string(r.bytes()) }

// decodePart reads an outbox entry.
func decodePart(b []byte) (*part, error) {
	if len(b) < 1 || b[0] != partVersion || len(b) > maxPartBytes {
		return nil, errPart
	}
	r := &partReader{b: b[1:]}
	p := &part{now: r.varint()}
	for range r.count() {
		q := r.str()
		p.dels = append(p.dels, broker.MessageRef{Queue: q, ID: r.uvarint()})
	}
	for range r.count() {
		q := broker.QueuePush{Queue: r.str()}
		for range r.count() {
			v := r.bytes()
			q.Messages = append(q.Messages, broker.NewMessage{Value: v, TTL: time.Duration(r.varint())})
		}
		p.pushes = append(p.pushes, q)
	}
	for range r.count() {
		k := r.str()
		v, err := decodeKV(r.bytes())
		if err != nil {
			r.fail()
		}
		p.kvSet = append(p.kvSet, broker.KVEntry{Key: k, Value: v, TTL: time.Duration(r.varint())})
	}
	for range r.count() {
		p.kvDel = append(p.kvDel, r.str())
	}
	for range r.count() {
		k := r.str()
		p.recSet = append(p.recSet, broker.Record{Key: k, Value: r.bytes()})
	}
	for range r.count() {
		p.recDel = append(p.recDel, r.str())
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// check validates what a decoded part says before it is applied: times,
// ids and TTLs in range, names the store could have written.
func (p *part) check() error {
	if p.now < 0 {
		return fmt.Errorf("%w: time %d", errPart, p.now)
	}
	for _, d := range p.dels {
		if d.ID == 0 || d.Queue == "" {
			return fmt.Errorf("%w: delete %q %d", errPart, d.Queue, d.ID)
		}
	}
	for _, q := range p.pushes {
		if q.Queue == "" {
			return fmt.Errorf("%w: push to no queue", errPart)
		}
		for _, m := range q.Messages {
			if m.TTL < 0 {
				return fmt.Errorf("%w: TTL %v", errPart, m.TTL)
			}
		}
	}
	for _, e := range p.kvSet {
		if e.TTL < 0 {
			return fmt.Errorf("%w: TTL %v", errPart, e.TTL)
		}
	}
	return nil
}
