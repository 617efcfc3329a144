package broker

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// Internal is the engine's handle of the broker. It runs the very same
// queue semantics as the Broker (pause holds, live consumers wake, counters
// and metrics count) over both namespaces: public queue names, so that a
// job can drain an input queue and post to an output queue, and internal
// ones (CheckInternalQueueName), which only this handle reaches. It also
// reaches the store's record space and the broker's event feed. Nothing
// that serves clients may hold it.
type Internal struct {
	b *Broker
}

// Push appends messages to a queue of either namespace.
func (h *Internal) Push(ctx context.Context, queue string, msgs []NewMessage) ([]Message, error) {
	if err := checkAnyQueueName(queue); err != nil {
		return nil, err
	}
	return h.b.push(ctx, queue, msgs)
}

// Lease leases up to n messages for visibility, as Broker.Lease does: a
// paused queue answers ErrQueuePaused.
func (h *Internal) Lease(ctx context.Context, queue string, n int, visibility time.Duration) ([]Lease, error) {
	if err := checkAnyQueueName(queue); err != nil {
		return nil, err
	}
	return h.b.lease(ctx, queue, n, visibility)
}

// Release returns leased messages to the head of their queue at once, their
// attempts unchanged; ids that are not live leases are returned.
func (h *Internal) Release(ctx context.Context, queue string, leaseIDs []string) ([]string, error) {
	if err := checkAnyQueueName(queue); err != nil {
		return nil, err
	}
	return h.b.store.LeaseRelease(ctx, queue, leaseIDs)
}

// Nack ends a lease with an error, with the caller's MaxAttempts (a job's
// own); p.Now is set by the broker.
func (h *Internal) Nack(ctx context.Context, p LeaseNackParams) (deadLettered bool, err error) {
	if err := checkAnyQueueName(p.Queue); err != nil {
		return false, err
	}
	return h.b.nack(ctx, p)
}

// Extend moves a lease's deadline to now+visibility.
func (h *Internal) Extend(ctx context.Context, queue, leaseID string, visibility time.Duration) (Lease, error) {
	if err := checkAnyQueueName(queue); err != nil {
		return Lease{}, err
	}
	if visibility <= 0 || visibility > h.b.cfg.MaxVisibility {
		return Lease{}, fmt.Errorf("%w: visibility %s is outside 0..%s", ErrInvalid, visibility, h.b.cfg.MaxVisibility)
	}
	return h.b.store.LeaseExtend(ctx, queue, leaseID, h.b.now().Add(visibility))
}

// Scan returns up to limit ready messages with ids above afterID, in id
// order, without changing them.
func (h *Internal) Scan(ctx context.Context, queue string, afterID uint64, limit int) ([]Message, error) {
	if err := checkAnyQueueName(queue); err != nil {
		return nil, err
	}
	return h.b.store.QueueScan(ctx, queue, afterID, limit)
}

// Purge deletes a queue whole and closes its live consumers.
func (h *Internal) Purge(ctx context.Context, queue string) error {
	if err := checkAnyQueueName(queue); err != nil {
		return err
	}
	return h.b.store.QueuePurge(ctx, queue)
}

// Stats returns a queue's statistics, or ErrQueueNotFound.
func (h *Internal) Stats(ctx context.Context, queue string) (Stats, error) {
	if err := checkAnyQueueName(queue); err != nil {
		return Stats{}, err
	}
	return h.b.stats(ctx, queue)
}

// Commit applies groups of changes in one transaction (Store.Commit): a
// group whose acks are not all live leases is skipped whole. Every queue it
// names may be of either namespace; every record key must be UTF-8.
func (h *Internal) Commit(ctx context.Context, groups []CommitGroup) ([]CommitResult, error) {
	for i := range groups {
		if err := checkGroup(&groups[i]); err != nil {
			return nil, fmt.Errorf("commit group %d: %w", i, err)
		}
	}
	res, err := h.b.store.Commit(ctx, CommitParams{Groups: groups, Now: h.b.now()})
	if err != nil {
		return nil, err
	}
	for i, r := range res {
		if r.Applied {
			h.b.counters.Acks.Add(int64(len(groups[i].Acks)))
			h.b.counters.Pushes.Add(int64(len(r.Pushed)))
		}
	}
	return res, nil
}

// checkGroup checks every name in a commit group.
func checkGroup(g *CommitGroup) error {
	for _, a := range g.Acks {
		if err := checkAnyQueueName(a.Queue); err != nil {
			return err
		}
	}
	for _, d := range g.Deletes {
		if err := checkAnyQueueName(d.Queue); err != nil {
			return err
		}
	}
	for _, p := range g.Pushes {
		if err := checkAnyQueueName(p.Queue); err != nil {
			return err
		}
	}
	for _, r := range g.RecordSet {
		if err := checkRecordKey(r.Key); err != nil {
			return err
		}
	}
	for _, k := range g.RecordDelete {
		if err := checkRecordKey(k); err != nil {
			return err
		}
	}
	return nil
}

// MaxRecordKey bounds an engine record's key, in bytes.
const MaxRecordKey = 1024

func checkRecordKey(k string) error {
	if k == "" || len(k) > MaxRecordKey || !utf8.ValidString(k) {
		return fmt.Errorf("%w: record key %q must be 1-%d bytes of UTF-8", ErrInvalid, truncate(k, 40), MaxRecordKey)
	}
	return nil
}

// RecordGet returns an engine record's value, or ErrRecordNotFound.
func (h *Internal) RecordGet(ctx context.Context, key string) ([]byte, error) {
	return h.b.store.RecordGet(ctx, key)
}

// RecordScan returns up to p.Limit records with p.Prefix after p.After.
func (h *Internal) RecordScan(ctx context.Context, p RecordScanParams) ([]Record, error) {
	return h.b.store.RecordScan(ctx, p)
}

// RecordDeletePrefix deletes every record whose key starts with prefix.
func (h *Internal) RecordDeletePrefix(ctx context.Context, prefix string) (int, error) {
	if prefix == "" {
		return 0, fmt.Errorf("%w: deleting every record needs a prefix", ErrInvalid)
	}
	return h.b.store.RecordDeletePrefix(ctx, prefix)
}

// Watch calls fn with every store event after the broker has handled it
// (see Store.Watch); fn must not block. stop ends the watch.
func (h *Internal) Watch(fn func(Event)) (stop func()) { return h.b.watchers.Add(fn) }
