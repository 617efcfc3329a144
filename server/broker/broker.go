package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config bounds what the broker accepts. Zero fields take the defaults.
type Config struct {
	MaxAttempts       int           // failed leases before dead-lettering (default 5)
	MaxMessage        int           // bytes per message value (default 8 MiB)
	MaxBatch          int           // messages per batch push (default 10,000)
	MaxLease          int           // messages per lease call (default 1,000)
	DefaultVisibility time.Duration // lease time when the caller gives none (default 30 s)
	MaxVisibility     time.Duration // longest lease (default 12 h)
	MaxDelay          time.Duration // longest nack delay (default 24 h)
	MaxTTL            time.Duration // longest message TTL (default 30 days)
	LiveVisibility    time.Duration // lease of a message written to a live consumer (default 30 s)
	ReapInterval      time.Duration // how often expired leases are reaped (default 200 ms)
	ConsumerBuffer    int           // deliveries queued per live consumer (default 64)
	// Owner names this process as the holder of the leases it takes; the
	// default is a random id, new at every start.
	Owner string
	// OwnerInterval is how often the broker tells the store it is alive and
	// recovers the leases of owners that are not (default 2 s).
	OwnerInterval time.Duration
	// Now is the clock; tests may set it. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxAttempts, 5)
	def(&c.MaxMessage, 8<<20)
	def(&c.MaxBatch, 10000)
	def(&c.MaxLease, 1000)
	def(&c.ConsumerBuffer, 64)
	defDur(&c.DefaultVisibility, 30*time.Second)
	defDur(&c.MaxVisibility, 12*time.Hour)
	defDur(&c.MaxDelay, 24*time.Hour)
	defDur(&c.MaxTTL, 30*24*time.Hour)
	defDur(&c.LiveVisibility, 30*time.Second)
	defDur(&c.ReapInterval, 200*time.Millisecond)
	defDur(&c.OwnerInterval, 2*time.Second)
	if c.Owner == "" {
		c.Owner = newOwnerID()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Broker is the queue broker: it validates requests, enforces pause and
// limits, runs live delivery to COMET and WebSocket consumers and reaps
// expired leases, with all state in its Store. Its methods serve the public
// namespace only: a name with '/' is refused, and listings leave internal
// queues out. The engine's own queues go through Internal.
type Broker struct {
	store Store
	cfg   Config
	log   *slog.Logger

	mu       sync.Mutex
	queues   map[string]*liveQueue // queues with cached state or live consumers
	stateGen uint64                // raised whenever a cached status or policy is dropped
	closed   bool

	counters Counters
	watchers Watchers
	internal *Internal

	stopWatch func()
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// ownerTTL is how long past its last heartbeat an owner counts as alive on a
// shared store, in units of OwnerInterval.
const ownerTTL = 5

// New returns a broker over store and starts its lease reaper. It first
// tells the store it is alive and recovers the leases of owners that are
// gone: on an embedded store, every lease taken before this start.
func New(ctx context.Context, store Store, cfg Config, log *slog.Logger) (*Broker, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	b := &Broker{store: store, cfg: cfg, log: log, queues: map[string]*liveQueue{}}
	b.internal = &Internal{b: b}
	if err := b.heartbeat(ctx); err != nil {
		return nil, err
	}
	n, err := b.recover(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Info("released leases of earlier processes", "messages", n)
	}
	b.stopWatch = store.Watch(b.onEvent)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(2)
	go b.reapLoop()
	go b.ownerLoop()
	return b, nil
}

// newOwnerID returns a random lease owner id.
func newOwnerID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "p" + hex.EncodeToString(b[:])
}

// Config returns the broker's effective configuration.
func (b *Broker) Config() Config { return b.cfg }

// Close stops live delivery and the reaper, closes every live consumer,
// waits for the broker's goroutines and returns the leases this process
// still holds to their queues. It does not close the store.
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	var consumers []*Consumer
	for _, q := range b.queues {
		consumers = append(consumers, q.consumerList()...)
	}
	b.mu.Unlock()
	b.cancel()
	for _, c := range consumers {
		c.drop(ErrClosed)
	}
	b.wg.Wait()
	b.stopWatch()
	ctx := context.Background()
	if err := b.store.OwnerHeartbeat(ctx, OwnerParams{Owner: b.cfg.Owner}); err != nil && !errors.Is(err, ErrClosed) {
		b.log.Error("say this process stopped", "err", err)
	}
	if _, err := b.recover(ctx); err != nil && !errors.Is(err, ErrClosed) {
		b.log.Error("return the leases of this process", "err", err)
	}
}

func (b *Broker) now() time.Time { return b.cfg.Now() }

// Internal returns the engine's handle of the broker: the same queues and
// rules, with the internal namespace open (see Internal).
func (b *Broker) Internal() *Internal { return b.internal }

// Push appends messages to a queue; its live consumers wake when the store
// announces the push.
func (b *Broker) Push(ctx context.Context, queue string, msgs []NewMessage) ([]Message, error) {
	if err := CheckQueueName(queue); err != nil {
		return nil, err
	}
	return b.push(ctx, queue, msgs)
}

func (b *Broker) push(ctx context.Context, queue string, msgs []NewMessage) ([]Message, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: no messages to push", ErrInvalid)
	}
	if len(msgs) > b.cfg.MaxBatch {
		return nil, fmt.Errorf("%w: %d messages in one batch, the limit is %d", ErrInvalid, len(msgs), b.cfg.MaxBatch)
	}
	for i, m := range msgs {
		if len(m.Value) > b.cfg.MaxMessage {
			return nil, fmt.Errorf("%w: message %d is %d bytes, the limit is %d", ErrInvalid, i, len(m.Value), b.cfg.MaxMessage)
		}
		if m.TTL < 0 || m.TTL > b.cfg.MaxTTL {
			return nil, fmt.Errorf("%w: ttl %s is outside 0..%s", ErrInvalid, m.TTL, b.cfg.MaxTTL)
		}
	}
	out, err := b.store.QueuePush(ctx, QueuePushParams{Queue: queue, Messages: msgs, Now: b.now()})
	if err != nil {
		return nil, err
	}
	b.counters.Pushes.Add(int64(len(out)))
	return out, nil
}

// Take removes and returns the oldest message (RestMQ's hard get). It returns
// ErrQueueEmpty, or ErrQueuePaused while the queue is paused.
func (b *Broker) Take(ctx context.Context, queue string) (Message, error) {
	if err := CheckQueueName(queue); err != nil {
		return Message{}, err
	}
	if err := b.checkDeliverable(ctx, queue); err != nil {
		return Message{}, err
	}
	m, err := b.store.QueueTake(ctx, queue, b.now())
	if err == nil {
		b.counters.Takes.Add(1)
	}
	return m, err
}

// Peek returns the oldest message without removing it and raises its count
// (RestMQ's soft get).
func (b *Broker) Peek(ctx context.Context, queue string) (Message, error) {
	if err := CheckQueueName(queue); err != nil {
		return Message{}, err
	}
	if err := b.checkDeliverable(ctx, queue); err != nil {
		return Message{}, err
	}
	m, err := b.store.QueuePeek(ctx, queue, b.now())
	if err == nil {
		b.counters.Peeks.Add(1)
	}
	return m, err
}

// Lease leases up to n messages for visibility (the default when zero).
func (b *Broker) Lease(ctx context.Context, queue string, n int, visibility time.Duration) ([]Lease, error) {
	if err := CheckQueueName(queue); err != nil {
		return nil, err
	}
	return b.lease(ctx, queue, n, visibility)
}

func (b *Broker) lease(ctx context.Context, queue string, n int, visibility time.Duration) ([]Lease, error) {
	if err := b.checkDeliverable(ctx, queue); err != nil {
		return nil, err
	}
	if n <= 0 || n > b.cfg.MaxLease {
		return nil, fmt.Errorf("%w: n %d is outside 1..%d", ErrInvalid, n, b.cfg.MaxLease)
	}
	if visibility == 0 {
		visibility = b.cfg.DefaultVisibility
	}
	if visibility < 0 || visibility > b.cfg.MaxVisibility {
		return nil, fmt.Errorf("%w: visibility %s is outside 0..%s", ErrInvalid, visibility, b.cfg.MaxVisibility)
	}
	ls, err := b.store.QueueLease(ctx, QueueLeaseParams{Queue: queue, N: n, Visibility: visibility, Now: b.now(), Owner: b.cfg.Owner})
	b.counters.Leases.Add(int64(len(ls)))
	return ls, err
}

// Ack acknowledges leases; unknown lease ids are returned.
func (b *Broker) Ack(ctx context.Context, queue string, leaseIDs []string) ([]string, error) {
	if err := CheckQueueName(queue); err != nil {
		return nil, err
	}
	if len(leaseIDs) == 0 || len(leaseIDs) > b.cfg.MaxLease {
		return nil, fmt.Errorf("%w: %d lease ids, want 1..%d", ErrInvalid, len(leaseIDs), b.cfg.MaxLease)
	}
	unknown, err := b.store.LeaseAck(ctx, queue, leaseIDs)
	if err == nil {
		b.counters.Acks.Add(int64(len(leaseIDs) - len(unknown)))
	}
	return unknown, err
}

// Nack ends a lease with an error: the message returns after delay, or moves
// to the dead-letter queue once it has failed MaxAttempts times.
func (b *Broker) Nack(ctx context.Context, queue, leaseID string, delay time.Duration, reason string) (deadLettered bool, err error) {
	if err := CheckQueueName(queue); err != nil {
		return false, err
	}
	return b.nack(ctx, LeaseNackParams{Queue: queue, LeaseID: leaseID, Delay: delay, Error: reason, MaxAttempts: b.cfg.MaxAttempts})
}

// maxNackError bounds the error a nack keeps with its message.
const maxNackError = 4096

func (b *Broker) nack(ctx context.Context, p LeaseNackParams) (bool, error) {
	if p.Delay < 0 || p.Delay > b.cfg.MaxDelay {
		return false, fmt.Errorf("%w: delay %s is outside 0..%s", ErrInvalid, p.Delay, b.cfg.MaxDelay)
	}
	if len(p.Error) > maxNackError {
		p.Error = p.Error[:maxNackError]
	}
	p.Now = b.now()
	dead, err := b.store.LeaseNack(ctx, p)
	if err == nil {
		b.counters.Nacks.Add(1)
	}
	return dead, err
}

// Extend moves a lease's deadline to now+visibility.
func (b *Broker) Extend(ctx context.Context, queue, leaseID string, visibility time.Duration) (Lease, error) {
	if err := CheckQueueName(queue); err != nil {
		return Lease{}, err
	}
	if visibility == 0 {
		visibility = b.cfg.DefaultVisibility
	}
	if visibility < 0 || visibility > b.cfg.MaxVisibility {
		return Lease{}, fmt.Errorf("%w: visibility %s is outside 0..%s", ErrInvalid, visibility, b.cfg.MaxVisibility)
	}
	return b.store.LeaseExtend(ctx, queue, leaseID, b.now().Add(visibility))
}

// Scan returns up to limit waiting messages with ids above afterID, in id
// order, without handing them out (nothing is counted or leased).
func (b *Broker) Scan(ctx context.Context, queue string, afterID uint64, limit int) ([]Message, error) {
	if err := CheckQueueName(queue); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > b.cfg.MaxLease {
		return nil, fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, limit, b.cfg.MaxLease)
	}
	return b.store.QueueScan(ctx, queue, afterID, limit)
}

// Delete deletes one message by its key "queue:id".
func (b *Broker) Delete(ctx context.Context, key string) error {
	q, id, err := ParseKey(key)
	if err != nil {
		return err
	}
	return b.store.MessageDelete(ctx, q, id)
}

// Purge deletes a queue's messages and closes its live consumers, and
// reports how many messages it deleted. The queue keeps its status, policy
// and last id: as in RestMQ, a key is never reused under the same name.
func (b *Broker) Purge(ctx context.Context, queue string) (int64, error) {
	if err := CheckQueueName(queue); err != nil {
		return 0, err
	}
	return b.store.QueueClear(ctx, queue) // onEvent drops its consumers
}

// Flush deletes the public namespace whole (every public queue and every
// key/value entry, as Redis's FLUSHDB would) and closes the live consumers
// of those queues. Internal queues and the engine's records stay.
func (b *Broker) Flush(ctx context.Context) (FlushResult, error) {
	return b.store.FlushPublic(ctx) // onEvent drops the consumers
}

var errPurged = errors.New("queue purged")

// Stats is a queue's state with what only the running broker knows.
type Stats struct {
	QueueInfo
	Dead      int64 `json:"dead"`      // messages waiting in the dead-letter queue
	Consumers int   `json:"consumers"` // live COMET and WebSocket consumers
}

// Stats returns one queue's statistics, or ErrQueueNotFound.
func (b *Broker) Stats(ctx context.Context, queue string) (Stats, error) {
	if err := CheckQueueName(queue); err != nil {
		return Stats{}, err
	}
	return b.stats(ctx, queue)
}

func (b *Broker) stats(ctx context.Context, queue string) (Stats, error) {
	info, err := b.store.QueueGet(ctx, queue)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{QueueInfo: info, Consumers: b.consumerCount(queue)}
	if d, err := b.store.QueueGet(ctx, DeadQueue(queue)); err == nil {
		st.Dead = d.Length
	}
	return st, nil
}

// List returns every public queue's statistics, sorted by name.
func (b *Broker) List(ctx context.Context) ([]Stats, error) {
	infos, err := b.store.QueueList(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]int64, len(infos))
	for _, in := range infos {
		byName[in.Name] = in.Length
	}
	out := make([]Stats, 0, len(infos))
	for _, in := range infos {
		if IsInternalQueue(in.Name) {
			continue
		}
		out = append(out, Stats{QueueInfo: in, Dead: byName[DeadQueue(in.Name)], Consumers: b.consumerCount(in.Name)})
	}
	return out, nil
}

// SetStatus pauses or resumes delivery on every path of a queue.
func (b *Broker) SetStatus(ctx context.Context, queue string, s Status) error {
	if err := CheckQueueName(queue); err != nil {
		return err
	}
	if s != StatusActive && s != StatusPaused {
		return fmt.Errorf("%w: status %q", ErrInvalid, s)
	}
	return b.store.QueueSetStatus(ctx, queue, s) // onEvent drops the cached state
}

// SetPolicy sets how a queue's live consumers share its messages.
func (b *Broker) SetPolicy(ctx context.Context, queue string, p Policy) error {
	if err := CheckQueueName(queue); err != nil {
		return err
	}
	if _, err := ParsePolicy(string(p)); err != nil {
		return err
	}
	return b.store.QueueSetPolicy(ctx, queue, p)
}

// QueueState returns a queue's status and policy; a queue that does not exist
// yet is active, with the DefaultPolicy.
func (b *Broker) QueueState(ctx context.Context, queue string) (Status, Policy, error) {
	if err := CheckQueueName(queue); err != nil {
		return "", "", err
	}
	return b.queueState(ctx, queue)
}

func (b *Broker) queueState(ctx context.Context, queue string) (Status, Policy, error) {
	b.mu.Lock()
	if lq := b.queues[queue]; lq != nil && lq.known {
		s, p := lq.status, lq.policy
		b.mu.Unlock()
		return s, p, nil
	}
	gen := b.stateGen
	b.mu.Unlock()
	info, err := b.store.QueueGet(ctx, queue)
	if errors.Is(err, ErrQueueNotFound) {
		return StatusActive, DefaultPolicy, nil // not cached: names that do not exist cost no memory
	}
	if err != nil {
		return "", "", err
	}
	b.mu.Lock()
	if b.stateGen == gen {
		lq := b.liveLocked(queue)
		lq.status, lq.policy, lq.known = info.Status, info.Policy, true
	}
	b.mu.Unlock()
	return info.Status, info.Policy, nil
}

func (b *Broker) checkDeliverable(ctx context.Context, queue string) error {
	s, _, err := b.queueState(ctx, queue)
	if err != nil {
		return err
	}
	if s == StatusPaused {
		return ErrQueuePaused
	}
	return nil
}
