package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tabreduce/tabreduce/server/broker"
)

// QueuePush appends messages to a queue.
func (s *Store) QueuePush(ctx context.Context, p broker.QueuePushParams) ([]broker.Message, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	now := nanos(p.Now)
	var h hints
	s.hintQueue(&h, p.Queue)
	args := make([]any, 0, 2+2*len(p.Messages))
	args = append(args, p.Queue, len(p.Messages))
	out := make([]broker.Message, len(p.Messages))
	for i, m := range p.Messages {
		exp := expiry(now, m.TTL)
		if exp != 0 {
			h.due(p.Queue, exp)
		}
		args = append(args, m.Value, pad(exp))
		out[i] = broker.Message{Queue: p.Queue, Value: bytes.Clone(m.Value), Created: fromNanos(now), Expires: fromNanos(exp)}
	}
	if err := s.writeHints(ctx, &h); err != nil {
		return nil, fmt.Errorf("push to %s: %w", p.Queue, err)
	}
	v, err := s.run(ctx, scriptPush, timeArgs(p.Now), s.keys.queue(p.Queue), args...)
	if err != nil {
		return nil, fmt.Errorf("push to %s: %w", p.Queue, err)
	}
	a, err := asSlice(v, 2, "push reply")
	if err != nil {
		return nil, err
	}
	s.emitReply(a[0])
	first, err := asID(a[1], "push reply id")
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].ID = first + uint64(i)
	}
	return out, nil
}

// expiry is the time a message pushed at now with ttl stops being
// deliverable; zero for none.
func expiry(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now + int64(ttl)
}

// QueueTake removes and returns the oldest deliverable message.
func (s *Store) QueueTake(ctx context.Context, queue string, now time.Time) (broker.Message, error) {
	return s.get(ctx, queue, now, true)
}

// QueuePeek returns the oldest deliverable message and raises its count.
func (s *Store) QueuePeek(ctx context.Context, queue string, now time.Time) (broker.Message, error) {
	return s.get(ctx, queue, now, false)
}

func (s *Store) get(ctx context.Context, queue string, now time.Time, take bool) (broker.Message, error) {
	if err := s.check(ctx); err != nil {
		return broker.Message{}, err
	}
	mode := "0"
	if take {
		mode = "1"
	}
	v, err := s.run(ctx, scriptGet, timeArgs(now), s.keys.queue(queue), queue, mode)
	if err != nil {
		return broker.Message{}, fmt.Errorf("get from %s: %w", queue, err)
	}
	a, err := asSlice(v, 1, "get reply")
	if err != nil {
		return broker.Message{}, err
	}
	if len(a) < 2 {
		return broker.Message{}, broker.ErrQueueEmpty
	}
	l, err := decodeMessage(queue, a[1])
	return l.msg, err
}

// QueueLease leases up to p.N of the oldest deliverable messages.
func (s *Store) QueueLease(ctx context.Context, p broker.QueueLeaseParams) ([]broker.Lease, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if p.N <= 0 {
		return []broker.Lease{}, nil
	}
	deadline := nanos(p.Now) + int64(p.Visibility)
	plan, err := s.leaseHintsFirst(ctx, p.Queue, p.Owner, deadline, p.Now)
	if err != nil {
		return nil, fmt.Errorf("lease from %s: %w", p.Queue, err)
	}
	keys := append(s.keys.queue(p.Queue), s.keys.leaseReply(p.Queue, s.requestID()))
	v, err := s.runAgain(ctx, scriptLease, timeArgs(p.Now), keys, p.Queue, p.N, pad(deadline), p.Owner)
	if err != nil {
		return nil, fmt.Errorf("lease from %s: %w", p.Queue, err)
	}
	a, err := asSlice(v, 2, "lease reply")
	if err != nil {
		return nil, err
	}
	gen, err := asString(a[1], "lease reply generation")
	if err != nil {
		return nil, err
	}
	s.leaseHintsAfter(ctx, p.Queue, deadline, gen, plan, p.Now)
	out := make([]broker.Lease, 0, len(a)-2)
	for _, m := range a[2:] {
		l, err := decodeMessage(p.Queue, m)
		if err != nil {
			return nil, err
		}
		out = append(out, l.lease())
	}
	return out, nil
}

// QueueGet returns a queue's state.
func (s *Store) QueueGet(ctx context.Context, queue string) (broker.QueueInfo, error) {
	if err := s.check(ctx); err != nil {
		return broker.QueueInfo{}, err
	}
	m, err := s.client.HGetAll(ctx, s.keys.meta(queue)).Result()
	if err != nil {
		return broker.QueueInfo{}, s.mapErr(err)
	}
	if len(m) == 0 {
		return broker.QueueInfo{}, broker.ErrQueueNotFound
	}
	return decodeMeta(queue, m)
}

// QueueList returns every queue's state, sorted by name.
func (s *Store) QueueList(ctx context.Context) ([]broker.QueueInfo, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	names, err := s.client.ZRange(ctx, s.keys.queues(), 0, -1).Result()
	if err != nil {
		return nil, s.mapErr(err)
	}
	out := make([]broker.QueueInfo, 0, len(names))
	for start := 0; start < len(names); start += listBatch {
		batch := names[start:min(start+listBatch, len(names))]
		cmds := make([]*redis.MapStringStringCmd, len(batch))
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, q := range batch {
				cmds[i] = p.HGetAll(ctx, s.keys.meta(q))
			}
			return nil
		})
		if err != nil {
			return nil, s.mapErr(err)
		}
		for i, c := range cmds {
			if len(c.Val()) == 0 {
				continue // hinted, never made or purged since
			}
			qi, err := decodeMeta(batch[i], c.Val())
			if err != nil {
				return nil, err
			}
			out = append(out, qi)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// listBatch is how many queues' states one pipeline reads.
const listBatch = 1000

// QueuePurge deletes everything of a queue.
func (s *Store) QueuePurge(ctx context.Context, queue string) error {
	_, _, err := s.purge(ctx, queue, "purge")
	return err
}

// QueueClear deletes a queue's messages and keeps its state.
func (s *Store) QueueClear(ctx context.Context, queue string) (int64, error) {
	_, n, err := s.purge(ctx, queue, "clear")
	return n, err
}

func (s *Store) purge(ctx context.Context, queue, mode string) (existed bool, n int64, err error) {
	if err := s.check(ctx); err != nil {
		return false, 0, err
	}
	v, err := s.run(ctx, scriptPurge, timeArgs(time.Time{}), s.keys.queue(queue), queue, mode)
	if err != nil {
		return false, 0, fmt.Errorf("%s %s: %w", mode, queue, err)
	}
	a, err := asSlice(v, 3, mode+" reply")
	if err != nil {
		return false, 0, err
	}
	s.emitReply(a[0])
	e, err1 := asCount(a[1], mode+" reply")
	n, err2 := asCount(a[2], mode+" reply")
	if err1 != nil || err2 != nil {
		return false, 0, corrupt(mode+" reply", v)
	}
	return e == 1, n, nil
}

// QueueSetStatus pauses or resumes a queue.
func (s *Store) QueueSetStatus(ctx context.Context, queue string, st broker.Status) error {
	code, ok := statusCode[st]
	if !ok {
		return fmt.Errorf("%w: status %q", broker.ErrInvalid, st)
	}
	return s.setMeta(ctx, queue, "st", code)
}

// QueueSetPolicy sets a queue's live-delivery policy.
func (s *Store) QueueSetPolicy(ctx context.Context, queue string, p broker.Policy) error {
	code, ok := policyCode[p]
	if !ok {
		return fmt.Errorf("%w: policy %q", broker.ErrInvalid, p)
	}
	return s.setMeta(ctx, queue, "pol", code)
}

func (s *Store) setMeta(ctx context.Context, queue, field, value string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var h hints
	s.hintQueue(&h, queue)
	if err := s.writeHints(ctx, &h); err != nil {
		return err
	}
	v, err := s.run(ctx, scriptSetMeta, timeArgs(time.Now()), s.keys.queue(queue), queue, field, value)
	if err != nil {
		return fmt.Errorf("set %s of %s: %w", field, queue, err)
	}
	a, err := asSlice(v, 1, "set reply")
	if err != nil {
		return err
	}
	s.emitReply(a[0])
	return nil
}

// MessageDelete deletes one message, ready or leased.
func (s *Store) MessageDelete(ctx context.Context, queue string, id uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	v, err := s.run(ctx, scriptDelete, timeArgs(time.Time{}), s.keys.queue(queue), queue, strconv.FormatUint(id, 10))
	if err != nil {
		return fmt.Errorf("delete %s:%d: %w", queue, id, err)
	}
	a, err := asSlice(v, 2, "delete reply")
	if err != nil {
		return err
	}
	if found, _ := asInt(a[1], "delete reply"); found != 1 {
		return broker.ErrMessageNotFound
	}
	return nil
}

// QueueScan returns ready messages after afterID without changing them.
func (s *Store) QueueScan(ctx context.Context, queue string, afterID uint64, limit int) ([]broker.Message, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	v, err := s.run(ctx, scriptScan, timeArgs(time.Time{}), s.keys.queue(queue), queue, strconv.FormatUint(afterID, 10), max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", queue, err)
	}
	a, err := asSlice(v, 1, "scan reply")
	if err != nil {
		return nil, err
	}
	out := make([]broker.Message, 0, len(a)-1)
	for _, m := range a[1:] {
		l, err := decodeMessage(queue, m)
		if err != nil {
			return nil, err
		}
		out = append(out, l.msg)
	}
	return out, nil
}

// Status and policy as stored.
var (
	statusCode = map[broker.Status]string{broker.StatusActive: "0", broker.StatusPaused: "1"}
	policyCode = map[broker.Policy]string{broker.PolicyBroadcast: "0", broker.PolicyRoundRobin: "1"}
	statusOf   = map[string]broker.Status{"0": broker.StatusActive, "1": broker.StatusPaused}
	policyOf   = map[string]broker.Policy{"0": broker.PolicyBroadcast, "1": broker.PolicyRoundRobin}
)

// decodeMeta reads a queue's state hash.
func decodeMeta(name string, m map[string]string) (broker.QueueInfo, error) {
	qi := broker.QueueInfo{Name: name}
	var ok bool
	if qi.Status, ok = statusOf[m["st"]]; !ok {
		return qi, corrupt(name+" status", m["st"])
	}
	if qi.Policy, ok = policyOf[m["pol"]]; !ok {
		return qi, corrupt(name+" policy", m["pol"])
	}
	last, err := strconv.ParseUint(m["last"], 10, 64)
	if err != nil {
		return qi, corrupt(name+" last id", m["last"])
	}
	qi.LastID = last
	for _, f := range []struct {
		key string
		to  *int64
	}{{"len", &qi.Length}, {"infl", &qi.InFlight}, {"pushed", &qi.Pushed}, {"deliv", &qi.Delivered}, {"acked", &qi.Acked}, {"dead", &qi.DeadLettered}} {
		n, err := asCount(m[f.key], name+" "+f.key)
		if err != nil {
			return qi, err
		}
		*f.to = n
	}
	created, err := asTime(m["created"], name+" created")
	if err != nil {
		return qi, err
	}
	qi.Created = fromNanos(created)
	return qi, nil
}
