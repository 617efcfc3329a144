package engine

import (
	"context"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Queues is what the engine needs of the broker: its Internal handle
// (broker.Internal), which runs the broker's queue semantics over the
// public queues a job reads and writes and over the job's own internal
// ones, and reaches the store's record space. The engine never touches the
// store itself, so any store the broker runs on runs the engine.
type Queues interface {
	Lease(ctx context.Context, queue string, n int, visibility time.Duration) ([]broker.Lease, error)
	Release(ctx context.Context, queue string, leaseIDs []string) ([]string, error)
	Extend(ctx context.Context, queue, leaseID string, visibility time.Duration) (broker.Lease, error)
	Nack(ctx context.Context, p broker.LeaseNackParams) (deadLettered bool, err error)
	Scan(ctx context.Context, queue string, afterID uint64, limit int) ([]broker.Message, error)
	Purge(ctx context.Context, queue string) error
	Stats(ctx context.Context, queue string) (broker.Stats, error)
	Commit(ctx context.Context, groups []broker.CommitGroup) ([]broker.CommitResult, error)
	RecordGet(ctx context.Context, key string) ([]byte, error)
	RecordScan(ctx context.Context, p broker.RecordScanParams) ([]broker.Record, error)
	RecordDeletePrefix(ctx context.Context, prefix string) (int, error)
	Watch(fn func(broker.Event)) (stop func())
}

var _ Queues = (*broker.Internal)(nil)

// commitOne applies one group.
func (e *Engine) commitOne(ctx context.Context, g broker.CommitGroup) (broker.CommitResult, error) {
	res, err := e.q.Commit(ctx, []broker.CommitGroup{g})
	if err != nil {
		return broker.CommitResult{}, err
	}
	return res[0], nil
}

// putRecords writes records in one transaction.
func (e *Engine) putRecords(ctx context.Context, recs ...broker.Record) error {
	_, err := e.commitOne(ctx, broker.CommitGroup{RecordSet: recs})
	return err
}

// scanRecords calls fn with every record under prefix, a page at a time.
func (e *Engine) scanRecords(ctx context.Context, prefix string, fn func(broker.Record) error) error {
	after := ""
	for {
		recs, err := e.q.RecordScan(ctx, broker.RecordScanParams{Prefix: prefix, After: after, Limit: 512})
		if err != nil || len(recs) == 0 {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		after = recs[len(recs)-1].Key
	}
}
