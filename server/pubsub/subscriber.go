package pubsub

import "sync"

// Subscriber is one member of one channel: the events published to the
// channel arrive on Events until the subscriber leaves (Close) or the Hub
// drops it, which closes Done.
//
// Whoever subscribed owns the Subscriber and must Close it, even after Done
// is closed: Hub.Close waits for every Subscriber to be closed.
type Subscriber struct {
	hub    *Hub
	ch     *channel
	member Member
	seq    uint64 // join order within the Hub
	events chan *Event
	done   chan struct{}
	// err is why the Hub dropped the subscriber. It is written under ch.mu
	// before done is closed, and read only after.
	err       error
	closeOnce sync.Once
}

// ID is the subscriber's id, unique within the Hub.
func (s *Subscriber) ID() string { return s.member.ID }

// Channel is the name of the subscriber's channel.
func (s *Subscriber) Channel() string { return s.ch.name }

// Member is the subscriber as presence lists it.
func (s *Subscriber) Member() Member { return s.member }

// Events delivers the channel's events in the order they were published,
// starting with the subscriber's own join. It is never closed: select on
// Done as well.
func (s *Subscriber) Events() <-chan *Event { return s.events }

// Done is closed when the subscriber is no longer a member of its channel:
// it closed, fell behind (Err is ErrSlow) or the Hub closed (ErrClosed).
// Events still buffered may be discarded.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Err reports why Done was closed: ErrSlow, ErrClosed, or nil if the
// subscriber closed itself or Done is still open.
func (s *Subscriber) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Publish sends a message from this subscriber to its channel, itself
// included; see Hub.Publish.
func (s *Subscriber) Publish(data []byte, binary bool) (int, error) {
	return s.hub.Publish(s.ch.name, s.member.ID, data, binary)
}

// Close leaves the channel, announcing the leave to the members that remain
// unless the Hub already dropped the subscriber. It is safe to call more than
// once.
func (s *Subscriber) Close() {
	s.closeOnce.Do(func() {
		ch := s.ch
		ch.mu.Lock()
		if ch.remove(s, nil) {
			ch.send(newEvent(Event{Type: EventLeave, Channel: ch.name, Member: s.member}), true)
		}
		ch.unlock()
		s.hub.subs.Done()
	})
}
