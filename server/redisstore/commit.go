package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Commit applies groups of changes. Each group is one unit: its primary
// part, in the slot of its lease acks (or else of its first change), is
// one script, which checks the leases and, only if all are live, applies
// the changes in that slot and writes the rest to the slot's outbox. The
// outbox entries are then applied to their own slots, each once (outbox.go),
// and removed; after a crash in between, any process's maintenance
// completes them. Groups of one slot share one script.
func (s *Store) Commit(ctx context.Context, p broker.CommitParams) ([]broker.CommitResult, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	now := nanos(p.Now)
	plans := make([]*groupPlan, len(p.Groups))
	var h hints
	for i, g := range p.Groups {
		gp, err := s.plan(g, now)
		if err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		plans[i] = gp
		s.hintPlan(&h, gp)
	}
	if err := s.writeHints(ctx, &h); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	results := make([]broker.CommitResult, len(p.Groups))
	for _, batch := range batchByTag(plans) {
		if err := s.commitPrimary(ctx, p.Now, plans, batch); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		for _, i := range batch {
			if gp := plans[i]; gp.applied {
				s.applyForeign(ctx, gp)
			}
		}
	}
	for i, gp := range plans {
		results[i].Applied = gp.applied
		if gp.applied {
			results[i].Pushed = gp.pushed()
		}
	}
	return results, nil
}

// groupPlan is one group split by slot.
type groupPlan struct {
	primary *part
	foreign []*part
	outIDs  []string // the outbox id of each foreign part
	// where each of the group's pushes went: part (0 primary, i+1
	// foreign[i]) and index in that part's pushes.
	pushAt [][2]int
	// filled in as it runs
	applied bool
	firsts  [][]uint64 // per part, the first id of each push (nil: not applied)
}

// pushed returns the messages the group's pushes created, in its order.
func (gp *groupPlan) pushed() []broker.Message {
	var out []broker.Message
	parts := append([]*part{gp.primary}, gp.foreign...)
	for _, at := range gp.pushAt {
		firsts := gp.firsts[at[0]]
		if at[1] >= len(firsts) {
			continue // its slot's part is still in the outbox
		}
		push := parts[at[0]].pushes[at[1]]
		for j, m := range push.Messages {
			out = append(out, broker.Message{
				Queue: push.Queue, ID: firsts[at[1]] + uint64(j), Value: m.Value,
				Created: fromNanos(parts[at[0]].now), Expires: fromNanos(expiry(parts[at[0]].now, m.TTL)),
			})
		}
	}
	return out
}

// plan splits a group by slot. Its acks must share one slot: a group's
// condition (every lease live) is checked in one script.
func (s *Store) plan(g broker.CommitGroup, now int64) (*groupPlan, error) {
	gp := &groupPlan{}
	byTag := map[string]*part{}
	order := []*part{}
	slot := func(tag, group string, kv bool) *part {
		if p, ok := byTag[tag]; ok {
			return p
		}
		p := &part{tag: tag, group: group, kv: kv, now: now}
		byTag[tag] = p
		order = append(order, p)
		return p
	}
	queueSlot := func(q string) *part { g := Group(q); return slot(s.keys.tag(g), g, false) }
	recordSlot := func(k string) *part { g := Group(k); return slot(s.keys.tag(g), g, false) }
	kvSlot := func() *part { return slot(s.keys.kvTag(), "", true) }

	for i, a := range g.Acks {
		p := queueSlot(a.Queue)
		if i > 0 && p != order[0] {
			return nil, fmt.Errorf("%w: the leases of one commit group are in queues of different groups (%q, %q)",
				broker.ErrInvalid, g.Acks[0].Queue, a.Queue)
		}
		p.acks = append(p.acks, a)
	}
	for _, d := range g.Deletes {
		p := queueSlot(d.Queue)
		p.dels = append(p.dels, d)
	}
	for _, q := range g.Pushes {
		p := queueSlot(q.Queue)
		gp.pushAt = append(gp.pushAt, [2]int{-1, len(p.pushes)})
		p.pushes = append(p.pushes, q)
		gp.pushAt[len(gp.pushAt)-1][0] = indexOf(order, p)
	}
	for _, e := range g.KVSet {
		p := kvSlot()
		p.kvSet = append(p.kvSet, e)
	}
	for _, k := range g.KVDelete {
		p := kvSlot()
		p.kvDel = append(p.kvDel, k)
	}
	for _, r := range g.RecordSet {
		p := recordSlot(r.Key)
		p.recSet = append(p.recSet, r)
	}
	for _, k := range g.RecordDelete {
		p := recordSlot(k)
		p.recDel = append(p.recDel, k)
	}
	if len(order) == 0 {
		order = append(order, &part{tag: s.keys.kvTag(), kv: true, now: now}) // an empty group: applied, changes nothing
	}
	gp.primary, gp.foreign = order[0], order[1:]
	for range gp.foreign {
		gp.outIDs = append(gp.outIDs, s.origin+"."+strconv.FormatUint(s.seq.Add(1), 36))
	}
	gp.firsts = make([][]uint64, len(order))
	return gp, nil
}

func indexOf(ps []*part, p *part) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return -1
}

// hintPlan adds the hints a group's changes need: the queues it may
// create, the deadlines of its pushes' TTLs, its record groups and, when
// it reaches other slots, its primary group's outbox.
func (s *Store) hintPlan(h *hints, gp *groupPlan) {
	for _, p := range append([]*part{gp.primary}, gp.foreign...) {
		for _, q := range p.pushes {
			s.hintQueue(h, q.Queue)
			for _, m := range q.Messages {
				if m.TTL > 0 {
					h.due(q.Queue, expiry(p.now, m.TTL))
				}
			}
		}
		if len(p.recSet) > 0 {
			s.hintRecordGroup(h, p.group)
		}
	}
	if len(gp.foreign) > 0 {
		h.outboxGroup(gp.primary.group)
	}
}

// batchByTag splits the plans' indexes into runs of one primary slot, in
// order: a run is one script, and each run's changes for other slots are
// applied before the next run starts, so groups take effect in order.
func batchByTag(plans []*groupPlan) [][]int {
	var out [][]int
	for i, gp := range plans {
		if n := len(out); n > 0 && plans[out[n-1][0]].primary.tag == gp.primary.tag {
			out[n-1] = append(out[n-1], i)
			continue
		}
		out = append(out, []int{i})
	}
	return out
}

// commitPrimary runs the primary parts of one slot's groups.
func (s *Store) commitPrimary(ctx context.Context, now time.Time, plans []*groupPlan, batch []int) error {
	c := newCallBuilder(s)
	for _, i := range batch {
		gp := plans[i]
		out := make([][2]string, len(gp.foreign))
		for j, f := range gp.foreign {
			out[j] = [2]string{gp.outIDs[j], string(f.encode())}
		}
		c.add(gp.primary, "", out)
	}
	replies, err := c.run(ctx, now)
	if err != nil {
		return err
	}
	for k, i := range batch {
		gp := plans[i]
		gp.applied = replies[k].applied == 1
		if gp.applied {
			gp.firsts[0] = replies[k].firsts
		}
	}
	return nil
}
