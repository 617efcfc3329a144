package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The outbox. A commit group whose changes span slots writes the changes
// for other slots into its primary slot's outbox, in the same script that
// checks its leases and applies the rest. Each entry is then applied to
// its own slot by commit.lua under the entry's id, which that slot
// remembers for a day (obd), so an entry applied twice (the committing
// process and a recovering one racing) changes its slot once; then the
// entry is deleted. Entries older than outboxGrace are completed by any
// process's maintenance, so a crash between the two scripts delays the
// foreign changes by seconds and loses none.

// outboxGrace is how old an outbox entry must be before maintenance
// completes it: older than any commit still running normally.
const outboxGrace = 5 * time.Second

// applyForeign applies an applied group's foreign parts and removes their
// outbox entries. A failure leaves the entries for maintenance: the group
// is committed, and its foreign changes follow within seconds.
func (s *Store) applyForeign(ctx context.Context, gp *groupPlan) {
	if len(gp.foreign) == 0 || s.leaveForeign {
		return
	}
	for j, f := range gp.foreign {
		firsts, err := s.applyPart(ctx, f, gp.outIDs[j])
		if err != nil {
			s.log.Warn("commit: changes for another slot left to maintenance", "slot", f.tag, "err", err)
			return
		}
		gp.firsts[j+1] = firsts
	}
	if err := s.dropOutbox(ctx, gp.primary.tag, gp.outIDs...); err != nil {
		s.log.Warn("commit: drop applied outbox entries", "slot", gp.primary.tag, "err", err)
	}
}

// applyPart applies one part to its slot under an outbox id and returns
// the first id of each of its pushes (nil if it was applied before).
func (s *Store) applyPart(ctx context.Context, p *part, obid string) ([]uint64, error) {
	c := newCallBuilder(s)
	c.add(p, obid, nil)
	replies, err := c.run(ctx, fromNanos(p.now))
	if err != nil {
		return nil, err
	}
	switch replies[0].applied {
	case 1:
		return replies[0].firsts, nil
	case 2:
		return nil, nil
	}
	return nil, fmt.Errorf("%w: an outbox entry was refused", errCorrupt)
}

// dropOutbox deletes applied entries from the outbox of the slot tag.
func (s *Store) dropOutbox(ctx context.Context, tag string, ids ...string) error {
	ob := outbox(tag)
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, ob[0], ids...)
		p.ZRem(ctx, ob[1], members...)
		return nil
	})
	return s.mapErr(err)
}

// recoverOutboxes completes the outbox entries older than outboxGrace of
// every group the outbox registry names.
func (s *Store) recoverOutboxes(ctx context.Context) error {
	groups, err := s.client.ZRange(ctx, s.keys.outboxGroups(), 0, -1).Result()
	if err != nil {
		return s.mapErr(err)
	}
	for _, g := range groups {
		if err := s.recoverOutbox(ctx, s.keys.tag(g)); err != nil {
			return fmt.Errorf("outbox of %q: %w", g, err)
		}
	}
	return nil
}

// recoverOutbox completes one slot's stale entries, a hundred at a time.
func (s *Store) recoverOutbox(ctx context.Context, tag string) error {
	ob := outbox(tag)
	for range 100 {
		now, err := s.client.Time(ctx).Result()
		if err != nil {
			return s.mapErr(err)
		}
		cutoff := now.Add(-s.outboxGrace).UnixMicro()
		ids, err := s.client.ZRangeByScore(ctx, ob[1], &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(cutoff), Count: 100}).Result()
		if err != nil || len(ids) == 0 {
			return s.mapErr(err)
		}
		blobs, err := s.client.HMGet(ctx, ob[0], ids...).Result()
		if err != nil {
			return s.mapErr(err)
		}
		for i, b := range blobs {
			text, ok := b.(string)
			if !ok {
				continue // deleted meanwhile by the process that wrote it
			}
			p, err := decodePart([]byte(text))
			if err != nil {
				s.log.Error("outbox entry unreadable: dropped", "slot", tag, "id", ids[i], "err", err)
			} else if err := s.placePart(p); err != nil {
				s.log.Error("outbox entry names no one slot: dropped", "slot", tag, "id", ids[i], "err", err)
			} else if _, err := s.applyPart(ctx, p, ids[i]); err != nil {
				return err
			}
		}
		if err := s.dropOutbox(ctx, tag, ids...); err != nil {
			return err
		}
		s.log.Info("completed outbox entries of an interrupted commit", "slot", tag, "entries", len(ids))
	}
	return nil
}

// placePart finds the slot of a decoded part from what it changes, and
// refuses one whose changes are not all in that slot.
func (s *Store) placePart(p *part) error {
	var tags []string
	add := func(tag, group string, kv bool) {
		if len(tags) == 0 {
			p.tag, p.group, p.kv = tag, group, kv
		}
		tags = append(tags, tag)
	}
	for _, d := range p.dels {
		add(s.keys.tag(Group(d.Queue)), Group(d.Queue), false)
	}
	for _, q := range p.pushes {
		add(s.keys.tag(Group(q.Queue)), Group(q.Queue), false)
	}
	for _, r := range p.recSet {
		add(s.keys.tag(Group(r.Key)), Group(r.Key), false)
	}
	for _, k := range p.recDel {
		add(s.keys.tag(Group(k)), Group(k), false)
	}
	if len(p.kvSet)+len(p.kvDel) > 0 {
		add(s.keys.kvTag(), "", true)
	}
	for _, t := range tags {
		if t != tags[0] {
			return fmt.Errorf("%w: slots %s and %s", errPart, tags[0], t)
		}
	}
	if len(tags) == 0 {
		return fmt.Errorf("%w: no changes", errPart)
	}
	return nil
}
