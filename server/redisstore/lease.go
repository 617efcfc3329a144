package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// LeaseAck deletes the leased messages.
func (s *Store) LeaseAck(ctx context.Context, queue string, leaseIDs []string) ([]string, error) {
	unknown, err := s.ackOrRelease(ctx, queue, leaseIDs, "ack")
	if err != nil {
		return nil, fmt.Errorf("ack on %s: %w", queue, err)
	}
	return unknown, nil
}

// LeaseRelease returns leased messages to the head of their queue, keeping
// their Attempts.
func (s *Store) LeaseRelease(ctx context.Context, queue string, leaseIDs []string) ([]string, error) {
	unknown, err := s.ackOrRelease(ctx, queue, leaseIDs, "release")
	if err != nil {
		return nil, fmt.Errorf("release on %s: %w", queue, err)
	}
	return unknown, nil
}

func (s *Store) ackOrRelease(ctx context.Context, queue string, leaseIDs []string, what string) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	unknown := []string{}
	args := []any{queue, what}
	var sent []string
	for _, l := range leaseIDs {
		ref, ok := parseLeaseID(l)
		if !ok {
			unknown = append(unknown, l)
			continue
		}
		args = append(args, ref.id, ref.seq, ref.created)
		sent = append(sent, l)
	}
	if len(sent) == 0 {
		return unknown, nil
	}
	v, err := s.run(ctx, scriptAck, timeArgs(time.Time{}), s.keys.queue(queue), args...)
	if err != nil {
		return nil, err
	}
	a, err := asSlice(v, 2, what+" reply")
	if err != nil {
		return nil, err
	}
	s.emitReply(a[0])
	idx, err := asSlice(a[1], 0, what+" reply")
	if err != nil {
		return nil, err
	}
	for _, x := range idx {
		i, err := asCount(x, what+" reply index")
		if err != nil || i >= int64(len(sent)) {
			return nil, corrupt(what+" reply index", x)
		}
		unknown = append(unknown, sent[i])
	}
	return unknown, nil
}

// LeaseNack ends a lease early with an error.
func (s *Store) LeaseNack(ctx context.Context, p broker.LeaseNackParams) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	ref, ok := parseLeaseID(p.LeaseID)
	if !ok {
		return false, fmt.Errorf("nack on %s: %w", p.Queue, broker.ErrLeaseNotFound)
	}
	dq := broker.DeadQueue(p.Queue)
	maxAttempts := deadLetterAt(p.Queue, p.MaxAttempts)
	var h hints
	if maxAttempts > 0 {
		s.hintQueue(&h, dq)
	}
	at := ""
	if p.Delay > 0 {
		t := nanos(p.Now) + int64(p.Delay)
		h.due(p.Queue, t)
		at = pad(t)
	}
	if err := s.writeHints(ctx, &h); err != nil {
		return false, fmt.Errorf("nack on %s: %w", p.Queue, err)
	}
	keys := append(s.keys.queue(p.Queue), s.keys.queue(dq)...)
	v, err := s.run(ctx, scriptNack, timeArgs(p.Now), keys, p.Queue, dq, ref.id, ref.seq, ref.created, p.Error, maxAttempts, at)
	if err != nil {
		return false, fmt.Errorf("nack on %s: %w", p.Queue, err)
	}
	a, err := asSlice(v, 2, "nack reply")
	if err != nil {
		return false, err
	}
	s.emitReply(a[0])
	switch dead, _ := asInt(a[1], "nack reply"); dead {
	case -1:
		return false, fmt.Errorf("nack on %s: %w", p.Queue, broker.ErrLeaseNotFound)
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	return false, corrupt("nack reply", v)
}

// LeaseExtend moves a live lease's deadline.
func (s *Store) LeaseExtend(ctx context.Context, queue, lease string, deadline time.Time) (broker.Lease, error) {
	if err := s.check(ctx); err != nil {
		return broker.Lease{}, err
	}
	ref, ok := parseLeaseID(lease)
	if !ok {
		return broker.Lease{}, fmt.Errorf("extend on %s: %w", queue, broker.ErrLeaseNotFound)
	}
	v, err := s.run(ctx, scriptExtend, timeArgs(time.Time{}), s.keys.queue(queue), queue, ref.id, ref.seq, ref.created, pad(nanos(deadline)))
	if err != nil {
		return broker.Lease{}, fmt.Errorf("extend on %s: %w", queue, err)
	}
	a, err := asSlice(v, 1, "extend reply")
	if err != nil {
		return broker.Lease{}, err
	}
	if len(a) < 2 {
		return broker.Lease{}, fmt.Errorf("extend on %s: %w", queue, broker.ErrLeaseNotFound)
	}
	l, err := decodeMessage(queue, a[1])
	if err != nil {
		return broker.Lease{}, err
	}
	return broker.Lease{ID: lease, Message: l.msg, Deadline: deadline}, nil
}
