package redisstore

import (
	"context"
	"strconv"
	"time"
)

// callBuilder builds one run of commit.lua: the keys of one slot and the
// argument stream that names them by index (commit.lua's comment).
type callBuilder struct {
	s       *Store
	keys    []string
	keyAt   map[string]int
	queues  []any // key index and name, per queue
	qAt     map[string]int
	kv      bool
	tag     string
	group   string
	recs    bool
	outbox  bool
	applied bool
	groups  []any
	count   int
}

func newCallBuilder(s *Store) *callBuilder {
	return &callBuilder{s: s, keyAt: map[string]int{}, qAt: map[string]int{}}
}

// key returns k's 1-based index in KEYS, adding it.
func (c *callBuilder) key(k string) int {
	if i, ok := c.keyAt[k]; ok {
		return i
	}
	c.keys = append(c.keys, k)
	c.keyAt[k] = len(c.keys)
	return len(c.keys)
}

// queue returns a queue's 1-based number, adding its five keys.
func (c *callBuilder) queue(name string) string {
	if i, ok := c.qAt[name]; ok {
		return strconv.Itoa(i)
	}
	ks := c.s.keys.queue(name)
	first := c.key(ks[0])
	for _, k := range ks[1:] {
		c.key(k)
	}
	c.queues = append(c.queues, first, name)
	c.qAt[name] = len(c.qAt) + 1
	return strconv.Itoa(len(c.qAt))
}

// add appends one group: a part, the outbox id it applies under ("" for
// a primary part) and the outbox entries it writes (id, text).
func (c *callBuilder) add(p *part, obid string, out [][2]string) {
	c.tag, c.group = p.tag, p.group
	c.kv = c.kv || len(p.kvSet)+len(p.kvDel) > 0
	c.recs = c.recs || len(p.recSet)+len(p.recDel) > 0
	c.outbox = c.outbox || len(out) > 0
	c.applied = c.applied || obid != ""
	g := []any{obid, len(p.acks)}
	for _, a := range p.acks {
		ref, ok := parseLeaseID(a.LeaseID)
		if !ok {
			ref = leaseRef{id: "0", seq: "0", created: pad(0)} // never live
		}
		g = append(g, c.queue(a.Queue), ref.id, ref.seq, ref.created)
	}
	g = append(g, len(p.dels))
	for _, d := range p.dels {
		g = append(g, c.queue(d.Queue), strconv.FormatUint(d.ID, 10))
	}
	g = append(g, len(p.pushes))
	for _, q := range p.pushes {
		g = append(g, c.queue(q.Queue), len(q.Messages))
		for _, m := range q.Messages {
			g = append(g, m.Value, pad(expiry(p.now, m.TTL)))
		}
	}
	g = append(g, len(p.kvSet))
	for _, e := range p.kvSet {
		g = append(g, e.Key, encodeKV(e.Value), ttlMicros(e.TTL))
	}
	g = append(g, len(p.kvDel))
	for _, k := range p.kvDel {
		g = append(g, k)
	}
	g = append(g, len(p.recSet))
	for _, r := range p.recSet {
		g = append(g, r.Key, r.Value)
	}
	g = append(g, len(p.recDel))
	for _, k := range p.recDel {
		g = append(g, k)
	}
	g = append(g, len(out))
	for _, o := range out {
		g = append(g, o[0], o[1])
	}
	c.groups = append(c.groups, g...)
	c.count++
}

// groupReply is what commit.lua says of one group: 1 applied, 0 skipped
// (a lease was not live), 2 applied before; and the first id of each push.
type groupReply struct {
	applied int64
	firsts  []uint64
}

// run sends the call and reads the groups' replies, in order.
func (c *callBuilder) run(ctx context.Context, now time.Time) ([]groupReply, error) {
	idx := func(use bool, k string) int {
		if !use {
			return 0
		}
		return c.key(k)
	}
	args := []any{c.s.keys.kvValuePrefix(), len(c.qAt)}
	args = append(args, c.queues...)
	kvKeys := c.s.keys.kvIndex()
	rec := c.s.keys.records(c.group)
	ob := outbox(c.tag)
	args = append(args,
		idx(c.kv, kvKeys[0]), idx(c.kv, kvKeys[1]),
		idx(c.recs, rec[0]), idx(c.recs, rec[1]),
		idx(c.outbox, ob[0]), idx(c.outbox, ob[1]), idx(c.applied, ob[2]),
		c.count)
	args = append(args, c.groups...)
	if len(c.keys) == 0 {
		c.key(c.tag + ":e") // a script needs a key to be routed by
	}
	v, err := c.s.run(ctx, scriptCommit, timeArgs(now), c.keys, args...)
	if err != nil {
		return nil, err
	}
	a, err := asSlice(v, 1+c.count, "commit reply")
	if err != nil {
		return nil, err
	}
	c.s.emitReply(a[0])
	out := make([]groupReply, c.count)
	for i := range out {
		g, err := asSlice(a[1+i], 1, "commit reply group")
		if err != nil {
			return nil, err
		}
		if out[i].applied, err = asInt(g[0], "commit reply"); err != nil {
			return nil, err
		}
		for _, f := range g[1:] {
			id, err := asID(f, "commit reply id")
			if err != nil {
				return nil, err
			}
			out[i].firsts = append(out[i].firsts, id)
		}
	}
	return out, nil
}

// ttlMicros is a key/value TTL in whole microseconds, at least one.
func ttlMicros(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Microseconds(), 1)
}
