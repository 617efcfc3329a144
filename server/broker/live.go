package broker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// liveQueue is the running broker's view of one queue: cached status and
// policy, and its live consumers with the goroutine that feeds them.
type liveQueue struct {
	name   string
	status Status
	policy Policy
	known  bool // status and policy are cached

	consumers map[uint64]*Consumer
	rr        uint64        // round-robin position
	wakeC     chan struct{} // signalled when there may be work for the dispatcher
	running   bool          // a dispatcher goroutine is running
}

func (q *liveQueue) consumerList() []*Consumer {
	out := make([]*Consumer, 0, len(q.consumers))
	for _, c := range q.consumers {
		out = append(out, c)
	}
	return out
}

// liveLocked returns the queue's live state, creating it. b.mu must be held.
func (b *Broker) liveLocked(queue string) *liveQueue {
	q := b.queues[queue]
	if q == nil {
		q = &liveQueue{name: queue, consumers: map[uint64]*Consumer{}, wakeC: make(chan struct{}, 1)}
		b.queues[queue] = q
	}
	return q
}

// forget drops a queue's cached status and policy.
func (b *Broker) forget(queue string) {
	b.mu.Lock()
	b.stateGen++
	if q := b.queues[queue]; q != nil {
		q.known = false
	}
	b.mu.Unlock()
}

// wake tells the queue's dispatcher, if any, that there may be work.
func (b *Broker) wake(queue string) {
	b.mu.Lock()
	q := b.queues[queue]
	b.mu.Unlock()
	if q != nil {
		q.signal()
	}
}

// signal wakes the queue's dispatcher without blocking.
func (q *liveQueue) signal() {
	select {
	case q.wakeC <- struct{}{}:
	default:
	}
}

// Consumers is how many live consumers a queue has, whether or not it
// exists in the store yet.
func (b *Broker) Consumers(queue string) int { return b.consumerCount(queue) }

func (b *Broker) consumerCount(queue string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q := b.queues[queue]; q != nil {
		return len(q.consumers)
	}
	return 0
}

// Delivery is one message written to a live consumer. The consumer reports
// the outcome with Consumer.Done; until then the message is leased.
type Delivery struct {
	Message Message
	shared  *sharedLease
}

// sharedLease is one lease delivered to one or more consumers (broadcast):
// it is acked when every consumer has reported and at least one succeeded,
// and returned to the queue when all failed.
type sharedLease struct {
	lease   Lease
	pending atomic.Int32
	okCount atomic.Int32
	reason  atomic.Pointer[string] // a consumer's explicit nack
}

// Consumer is a live COMET or WebSocket consumer of one queue. It reads
// deliveries from C and reports each with Done. A consumer that is dropped
// (slow, purged, broker closing) sees Gone closed.
type Consumer struct {
	id     uint64
	queue  string
	b      *Broker
	c      chan Delivery
	credit atomic.Int64 // deliveries it may still be sent
	pop    bool         // one of the queue's poppers (SubscribeOptions.Pop)

	mu          sync.Mutex
	outstanding map[*sharedLease]struct{}
	gone        chan struct{}
	goneErr     error
	closed      bool
}

var consumerSeq atomic.Uint64

// SubscribeOptions configure a live consumer.
type SubscribeOptions struct {
	// Prefetch bounds the deliveries sent but not yet reported (default and
	// maximum: the broker's ConsumerBuffer).
	Prefetch int
	// Pop makes the consumer one of the queue's poppers, as a blocking pop
	// of the Redis protocol is: whatever the queue's policy, each message
	// goes to one popper only, in turn, while a broadcast still reaches
	// every other consumer.
	Pop bool
}

// Subscribe adds a live consumer to a queue and starts delivery to it.
func (b *Broker) Subscribe(queue string, opts SubscribeOptions) (*Consumer, error) {
	if err := CheckQueueName(queue); err != nil {
		return nil, err
	}
	if opts.Prefetch <= 0 || opts.Prefetch > b.cfg.ConsumerBuffer {
		opts.Prefetch = b.cfg.ConsumerBuffer
	}
	c := &Consumer{
		id: consumerSeq.Add(1), queue: queue, b: b,
		c:           make(chan Delivery, b.cfg.ConsumerBuffer),
		pop:         opts.Pop,
		outstanding: map[*sharedLease]struct{}{},
		gone:        make(chan struct{}),
	}
	c.credit.Store(int64(opts.Prefetch))
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	q := b.liveLocked(queue)
	q.consumers[c.id] = c
	start := !q.running
	q.running = true
	if start {
		b.wg.Add(1)
	}
	b.mu.Unlock()
	if start {
		go b.dispatch(q)
	}
	b.wake(queue)
	return c, nil
}

// C returns the channel of deliveries.
func (c *Consumer) C() <-chan Delivery { return c.c }

// Gone is closed when the broker drops the consumer; Err says why.
func (c *Consumer) Gone() <-chan struct{} { return c.gone }

// Err says why the consumer was dropped: the queue was purged, the broker
// closed, or the consumer could not keep up.
func (c *Consumer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.goneErr
}

// Fail reports that the client refused a delivery (an explicit nack): unless
// another consumer took it, the message returns to its queue with its
// attempts raised, and may be dead-lettered.
func (c *Consumer) Fail(d Delivery, reason string) {
	d.shared.reason.Store(&reason)
	c.Done(d, false)
}

// Done reports the outcome of a delivery: ok means the message reached the
// client (and, in ack mode, the client acked it). A delivery that did not
// reach the client returns to the head of its queue, its attempts unchanged:
// the consumer went away, the message did not fail.
func (c *Consumer) Done(d Delivery, ok bool) {
	c.mu.Lock()
	_, mine := c.outstanding[d.shared]
	delete(c.outstanding, d.shared)
	c.mu.Unlock()
	if !mine {
		return
	}
	c.credit.Add(1)
	c.b.settle(c.queue, d.shared, ok)
	c.b.wake(c.queue)
}

// Close removes the consumer. Every delivery it had not reported returns to
// the queue, so a consumer that drops takes nothing with it.
func (c *Consumer) Close() {
	c.b.mu.Lock()
	if q := c.b.queues[c.queue]; q != nil {
		delete(q.consumers, c.id)
	}
	c.b.mu.Unlock()
	c.mu.Lock()
	c.closed = true
	left := make([]*sharedLease, 0, len(c.outstanding))
	for s := range c.outstanding {
		left = append(left, s)
	}
	c.outstanding = map[*sharedLease]struct{}{}
	c.mu.Unlock()
	for _, s := range left {
		c.b.settle(c.queue, s, false)
	}
	c.b.wake(c.queue)
}

// drop ends the consumer from the broker's side.
func (c *Consumer) drop(why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goneErr == nil {
		c.goneErr = why
		close(c.gone)
	}
}

// offer hands a delivery to the consumer without blocking; it reports false
// if the consumer is closed or its buffer is full.
func (c *Consumer) offer(s *sharedLease) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.goneErr != nil {
		return false
	}
	select {
	case c.c <- Delivery{Message: s.lease.Message, shared: s}:
		c.outstanding[s] = struct{}{}
		c.credit.Add(-1)
		return true
	default:
		return false
	}
}

// settle records one consumer's outcome of a shared lease and, when every
// consumer has reported, acks it or returns it to the queue.
func (b *Broker) settle(queue string, s *sharedLease, ok bool) {
	if ok {
		s.okCount.Add(1)
	}
	if s.pending.Add(-1) != 0 {
		return
	}
	ctx := context.Background()
	if s.okCount.Load() > 0 {
		if _, err := b.store.LeaseAck(ctx, queue, []string{s.lease.ID}); err != nil && !errors.Is(err, ErrClosed) {
			b.log.Error("ack live delivery", "queue", queue, "lease", s.lease.ID, "err", err)
		}
		return
	}
	var err error
	if reason := s.reason.Load(); reason != nil {
		_, err = b.store.LeaseNack(ctx, LeaseNackParams{
			Queue: queue, LeaseID: s.lease.ID, Error: *reason,
			MaxAttempts: b.cfg.MaxAttempts, Now: b.now(),
		})
	} else {
		_, err = b.store.LeaseRelease(ctx, queue, []string{s.lease.ID})
	}
	if err != nil && !errors.Is(err, ErrLeaseNotFound) && !errors.Is(err, ErrClosed) {
		b.log.Error("return live delivery", "queue", queue, "lease", s.lease.ID, "err", err)
	}
}
