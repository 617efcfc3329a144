package broker

import (
	"context"
	"time"
)

// Store is the durable state behind the broker: queues, leases, key/values
// and the engine's records. Every method is one atomic transaction: it
// either happens whole or not at all, and a crash never leaves half of it
// behind. Callers pass the current time so that implementations stay
// deterministic under test.
//
// A store holds two namespaces. The public one is every queue whose name
// has no '/' (CheckQueueName) and every key/value entry; the internal one
// is every queue whose name has a '/' (CheckInternalQueueName) and every
// record. A store does not check names (the broker does) but keeps the two
// apart: FlushPublic clears the first and leaves the second whole.
//
// A store may be shared by several processes (each its own Broker). Leases
// then belong to the process that took them (QueueLeaseParams.Owner), and
// Watch delivers the changes other processes make as well as this one's.
//
// The conformance suite in server/broker/storetest runs against every
// implementation; a new one must pass it unchanged.
type Store interface {
	// QueuePush appends messages to a queue, creating it, and returns them
	// with their ids, which increase per queue and are never reused while
	// the queue exists (a purge ends it; ids then start again at 1).
	QueuePush(ctx context.Context, p QueuePushParams) ([]Message, error)
	// QueueTake removes and returns the oldest deliverable message (hard get).
	// It returns ErrQueueEmpty when there is none.
	QueueTake(ctx context.Context, queue string, now time.Time) (Message, error)
	// QueuePeek returns the oldest deliverable message without removing it and
	// raises its Count (soft get). It returns ErrQueueEmpty when there is none.
	QueuePeek(ctx context.Context, queue string, now time.Time) (Message, error)
	// QueueLease leases up to p.N of the oldest deliverable messages until
	// p.Now+p.Visibility. It returns an empty slice when there are none.
	QueueLease(ctx context.Context, p QueueLeaseParams) ([]Lease, error)
	// QueueGet returns a queue's state, or ErrQueueNotFound.
	QueueGet(ctx context.Context, queue string) (QueueInfo, error)
	// QueueList returns every queue's state, sorted by name.
	QueueList(ctx context.Context) ([]QueueInfo, error)
	// QueuePurge deletes a queue's messages, leases and state. Purging a queue
	// that does not exist is not an error.
	QueuePurge(ctx context.Context, queue string) error
	// QueueClear deletes a queue's messages, ready, delayed and leased, but
	// keeps its state: status, policy, totals and the last id, so that ids
	// are never reused under the name (RestMQ's purge). It reports how many
	// messages it deleted; clearing a queue that does not exist deletes
	// nothing and creates nothing.
	QueueClear(ctx context.Context, queue string) (int64, error)
	// QueueSetStatus pauses or resumes a queue, creating it if needed.
	QueueSetStatus(ctx context.Context, queue string, s Status) error
	// QueueSetPolicy sets a queue's live-delivery policy, creating it if needed.
	QueueSetPolicy(ctx context.Context, queue string, p Policy) error

	// MessageDelete deletes one message, ready or leased, by its id.
	// It returns ErrMessageNotFound when there is none.
	MessageDelete(ctx context.Context, queue string, id uint64) error

	// LeaseAck deletes the leased messages. Ids that are not live leases are
	// returned in unknown; the others are acked all the same.
	LeaseAck(ctx context.Context, queue string, leaseIDs []string) (unknown []string, err error)
	// LeaseNack ends a lease early with an error. The message's Attempts rise;
	// at p.MaxAttempts it moves to the dead-letter queue (unless the queue is
	// one itself: DeadLetterOf), else it returns to the head of its queue
	// after p.Delay. It returns ErrLeaseNotFound for an id that is not a live
	// lease.
	LeaseNack(ctx context.Context, p LeaseNackParams) (deadLettered bool, err error)
	// LeaseExtend moves a live lease's deadline to deadline.
	LeaseExtend(ctx context.Context, queue, leaseID string, deadline time.Time) (Lease, error)
	// Reap returns leases whose deadline passed to the head of their queue
	// (raising Attempts, dead-lettering at p.MaxAttempts unless the queue is
	// a dead-letter queue itself), makes nacked
	// messages whose delay passed deliverable again, and drops messages whose
	// TTL passed. It does at most p.Limit of each and reports what it did.
	Reap(ctx context.Context, p ReapParams) (ReapResult, error)
	// OwnerHeartbeat records that a lease owner (a process) is alive until
	// p.Until; a zero Until says it has stopped. An owner's leases outlive
	// it only until LeaseRecover finds it gone.
	OwnerHeartbeat(ctx context.Context, p OwnerParams) error
	// LeaseRecover returns to the head of their queues, keeping their
	// Attempts, the leases whose owner is not alive at p.Now: on a store
	// shared by processes, owners whose heartbeat lapsed; on a store that one
	// process holds exclusively, every owner that has not sent a heartbeat
	// since the store was opened. Leases nacked with a delay are left to
	// Reap. It does at most p.Limit and reports what it did.
	LeaseRecover(ctx context.Context, p LeaseRecoverParams) (RecoverResult, error)
	// LeaseRelease returns leased messages to the head of their queue at once,
	// keeping their Attempts: the holder went away, which is not the message's
	// fault. Ids that are not live leases are returned in unknown.
	LeaseRelease(ctx context.Context, queue string, leaseIDs []string) (unknown []string, err error)

	// QueueScan returns up to limit ready messages with ids above afterID, in
	// id order, without changing them (no count is raised).
	QueueScan(ctx context.Context, queue string, afterID uint64, limit int) ([]Message, error)
	// Commit applies groups of changes in one transaction. A group any of
	// whose Acks names a lease that is not live is skipped whole, so a result
	// that arrives twice (late, duplicated, from a backup copy) is applied
	// once. The results say, per group, whether it took effect and which
	// messages it pushed.
	Commit(ctx context.Context, p CommitParams) ([]CommitResult, error)

	// KVGet returns a key's value or ErrKeyNotFound.
	KVGet(ctx context.Context, key string) (KVValue, error)
	// KVMGet returns the values of keys, with nil for each missing one.
	KVMGet(ctx context.Context, keys []string) ([]*KVValue, error)
	// KVSet stores every entry in one transaction.
	KVSet(ctx context.Context, entries []KVEntry) error
	// KVDelete deletes a key; it returns ErrKeyNotFound if it was absent.
	KVDelete(ctx context.Context, key string) error
	// KVScan returns every entry whose key starts with prefix, sorted by key.
	KVScan(ctx context.Context, prefix string) ([]KVEntry, error)
	// KVDeletePrefix deletes every key that starts with prefix.
	KVDeletePrefix(ctx context.Context, prefix string) (int, error)
	// KVSwap is the atomic read-modify-write of key/values: in one
	// transaction it checks every entry's condition against the values
	// before the call and, only if all hold, applies every entry's change in
	// order. It returns those earlier values whether or not it applied.
	KVSwap(ctx context.Context, p KVSwapParams) (KVSwapResult, error)

	// RecordGet returns an engine record's value, or ErrRecordNotFound.
	RecordGet(ctx context.Context, key string) ([]byte, error)
	// RecordScan returns up to p.Limit records whose keys start with
	// p.Prefix and sort after p.After, in key order.
	RecordScan(ctx context.Context, p RecordScanParams) ([]Record, error)
	// RecordDeletePrefix deletes every record whose key starts with prefix.
	RecordDeletePrefix(ctx context.Context, prefix string) (int, error)

	// FlushPublic deletes the public namespace whole: every queue whose
	// name has no '/' with its messages and leases, and every key/value
	// entry. Internal queues and records are left as they are.
	FlushPublic(ctx context.Context) (FlushResult, error)

	// Watch calls fn after each change of a queue that a consumer may care
	// about, in this process or (on a shared store) another; fn must not
	// block. Events are hints to look again, not a log: one event may stand
	// for several changes, and after EventResync every queue may have
	// changed. stop ends the watch.
	Watch(fn func(Event)) (stop func())

	// Close flushes and closes the store.
	Close() error
}

// EventKind is what changed.
type EventKind uint8

// Event kinds.
const (
	// EventPush: messages may have become deliverable on Queue (pushed,
	// returned by a release, a nack or the reaper).
	EventPush EventKind = iota + 1
	// EventState: Queue's status or policy changed.
	EventState
	// EventPurge: Queue was purged whole.
	EventPurge
	// EventFlush: the public namespace was flushed; Queue is empty.
	EventFlush
	// EventResync: changes may have been missed (a shared store's feed
	// broke off); Queue is empty and every queue may have changed.
	EventResync
)

// Event is one change a Store announces.
type Event struct {
	Kind  EventKind
	Queue string
}

// OwnerParams are the arguments of Store.OwnerHeartbeat.
type OwnerParams struct {
	Owner string
	Until time.Time // zero: the owner has stopped
}

// LeaseRecoverParams are the arguments of Store.LeaseRecover.
type LeaseRecoverParams struct {
	Now   time.Time
	Limit int
}

// RecoverResult says what one LeaseRecover did.
type RecoverResult struct {
	Released map[string]int // queue → leases returned to it
	More     bool           // Limit was reached; call again
}

// Record is one engine record: a key of the internal namespace and its value.
type Record struct {
	Key   string
	Value []byte
}

// RecordScanParams are the arguments of Store.RecordScan.
type RecordScanParams struct {
	Prefix string
	After  string // "" starts at the first key with Prefix
	Limit  int    // <= 0: every one
}

// FlushResult says what FlushPublic deleted.
type FlushResult struct {
	Queues int
	Keys   int
}

// NewMessage is one message to push.
type NewMessage struct {
	Value []byte
	TTL   time.Duration // zero: never expires
}

// QueuePushParams are the arguments of Store.QueuePush.
type QueuePushParams struct {
	Queue    string
	Messages []NewMessage
	Now      time.Time
}

// QueueLeaseParams are the arguments of Store.QueueLease.
type QueueLeaseParams struct {
	Queue      string
	N          int
	Visibility time.Duration
	Now        time.Time
	// Owner is the process the leases belong to (OwnerHeartbeat).
	Owner string
}

// LeaseNackParams are the arguments of Store.LeaseNack.
type LeaseNackParams struct {
	Queue       string
	LeaseID     string
	Delay       time.Duration
	Error       string
	MaxAttempts int
	Now         time.Time
}

// ReapParams are the arguments of Store.Reap.
type ReapParams struct {
	Now         time.Time
	MaxAttempts int
	Limit       int
}

// ReapResult says what one Reap did, per queue where it matters.
type ReapResult struct {
	Requeued     map[string]int // queue → leases that returned to the queue
	DeadLettered map[string]int // queue → messages moved to queue.dead
	Expired      int            // messages dropped for their TTL
	More         bool           // Limit was reached; call again
}

// KVValue is a stored value: JSON text, or raw bytes when Raw.
type KVValue struct {
	Data    []byte
	Raw     bool
	Expires time.Time // zero: never
}

// KVEntry is one key to set.
type KVEntry struct {
	Key   string
	Value KVValue
	TTL   time.Duration // zero: never expires
}

// CommitParams are the arguments of Store.Commit.
type CommitParams struct {
	Groups []CommitGroup
	Now    time.Time
}

// CommitGroup is one all-or-nothing unit of a Commit: ack leases, delete
// messages, push messages, set and delete keys, set and delete records, in
// that order.
type CommitGroup struct {
	Acks         []LeaseRef   // the group applies only if every one is live
	Deletes      []MessageRef // messages to delete, ready or leased; missing ones are skipped
	Pushes       []QueuePush
	KVSet        []KVEntry
	KVDelete     []string
	RecordSet    []Record
	RecordDelete []string // missing ones are skipped
}

// CommitResult is what one group of a Commit did.
type CommitResult struct {
	Applied bool
	Pushed  []Message // the messages its Pushes created, in order
}

// MessageRef names one message.
type MessageRef struct {
	Queue string
	ID    uint64
}

// LeaseRef names one lease.
type LeaseRef struct {
	Queue   string
	LeaseID string
}

// QueuePush is messages to append to one queue.
type QueuePush struct {
	Queue    string
	Messages []NewMessage
}
