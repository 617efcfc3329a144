package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Records live in their group's slot, beside the group's queues (a job's
// records beside its task queues), so that a task's result, its record
// and its lease ack are one script. A scan whose prefix names one group
// ("jobtask/ID/") reads that slot; any other reads every group the
// record-group registry names and merges them.

// RecordGet returns an engine record's value.
func (s *Store) RecordGet(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	v, err := s.client.HGet(ctx, s.keys.records(Group(key))[0], key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, broker.ErrRecordNotFound
	}
	if err != nil {
		return nil, s.mapErr(err)
	}
	return []byte(v), nil
}

// RecordScan returns records with a prefix after a key, in key order.
func (s *Store) RecordScan(ctx context.Context, p broker.RecordScanParams) ([]broker.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	lo, hi := lexRange(p.Prefix)
	if p.After != "" && p.After >= p.Prefix {
		lo = "(" + p.After
	}
	groups, err := s.recordGroupsFor(ctx, p.Prefix)
	if err != nil {
		return nil, fmt.Errorf("scan records %q: %w", p.Prefix, err)
	}
	var out []broker.Record
	for _, g := range groups {
		recs, err := s.recordRange(ctx, g, lo, hi, false, max(p.Limit, 0))
		if err != nil {
			return nil, fmt.Errorf("scan records %q: %w", p.Prefix, err)
		}
		out = append(out, recs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if p.Limit > 0 && len(out) > p.Limit {
		out = out[:p.Limit]
	}
	return out, nil
}

// RecordDeletePrefix deletes every record whose key starts with prefix.
func (s *Store) RecordDeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	groups, err := s.recordGroupsFor(ctx, prefix)
	if err != nil {
		return 0, fmt.Errorf("delete records %q: %w", prefix, err)
	}
	lo, hi := lexRange(prefix)
	n := 0
	for _, g := range groups {
		for {
			recs, err := s.recordRange(ctx, g, lo, hi, true, scanBatch)
			if err != nil {
				return n, fmt.Errorf("delete records %q: %w", prefix, err)
			}
			n += len(recs)
			if len(recs) < scanBatch {
				break
			}
		}
	}
	return n, nil
}

// recordGroupsFor returns the groups that may hold records with prefix.
func (s *Store) recordGroupsFor(ctx context.Context, prefix string) ([]string, error) {
	if g, ok := prefixGroup(prefix); ok {
		return []string{g}, nil
	}
	gs, err := s.client.ZRange(ctx, s.keys.recordGroups(), 0, -1).Result()
	return gs, s.mapErr(err)
}

// recordRange reads (and with del deletes) up to limit records of one
// group in a lex range.
func (s *Store) recordRange(ctx context.Context, group, lo, hi string, del bool, limit int) ([]broker.Record, error) {
	d := "0"
	if del {
		d = "1"
	}
	v, err := s.run(ctx, scriptRecScan, nowArgs{}, s.keys.records(group), lo, hi, d, limit)
	if err != nil {
		return nil, err
	}
	a, err := asSlice(v, 0, "record scan reply")
	if err != nil || len(a)%2 != 0 {
		return nil, corrupt("record scan reply", v)
	}
	out := make([]broker.Record, 0, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, err1 := asString(a[i], "record key")
		val, err2 := asString(a[i+1], "record value")
		if err1 != nil || err2 != nil || (Group(k) != group) {
			return nil, corrupt("record "+strings.ToValidUTF8(k, "?"), group)
		}
		out = append(out, broker.Record{Key: k, Value: []byte(val)})
	}
	return out, nil
}
