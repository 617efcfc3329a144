// Package broker is the queue broker's domain: messages, leases, queue state
// and the Broker that enforces names, limits, pause and live delivery on top of
// a Store. It knows nothing of HTTP, WebSockets or buntdb.
package broker

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxQueueName is the longest queue name a caller may use, in bytes. The
// dead-letter queue of a name ("name.dead") may be longer, since the broker
// names it.
const MaxQueueName = 128

// MaxInternalQueueName is the longest name of an internal queue.
const MaxInternalQueueName = 256

// InternalSeparator marks an internal queue: a public name never holds it,
// every internal name does ("job/ID/map"). Internal queues are reachable
// only through the broker's Internal handle.
const InternalSeparator = '/'

const deadSuffix = ".dead"

// ValidQueueName reports whether name is a queue name callers may use.
func ValidQueueName(name string) bool { return CheckQueueName(name) == nil }

// CheckQueueName returns an ErrInvalid error naming the problem, or nil. A
// public queue name is 1 to MaxQueueName bytes of UTF-8 text with no '/'
// and no control characters; in a URL it is percent-encoded. The
// dead-letter queue of a valid name is valid too, whatever its length.
func CheckQueueName(name string) error {
	base := name
	if len(name) > MaxQueueName {
		if b, ok := strings.CutSuffix(name, deadSuffix); ok && len(b) <= MaxQueueName {
			base = b
		}
	}
	switch {
	case len(base) == 0 || len(base) > MaxQueueName:
		return fmt.Errorf("%w: queue name %q must be 1-%d bytes", ErrInvalid, truncate(name, 40), MaxQueueName)
	case strings.IndexByte(name, InternalSeparator) >= 0:
		return fmt.Errorf("%w: queue name %q may not contain '/'", ErrInvalid, truncate(name, 40))
	}
	return checkText("queue name", name)
}

// IsInternalQueue reports whether name is in the internal namespace.
func IsInternalQueue(name string) bool { return strings.IndexByte(name, InternalSeparator) >= 0 }

// CheckInternalQueueName checks the name of an internal queue: 1 to
// MaxInternalQueueName bytes of UTF-8 text with no control characters,
// holding at least one '/'.
func CheckInternalQueueName(name string) error {
	if len(name) == 0 || len(name) > MaxInternalQueueName+len(deadSuffix) || !IsInternalQueue(name) {
		return fmt.Errorf("%w: internal queue name %q must be 1-%d bytes with a '/'", ErrInvalid, truncate(name, 40), MaxInternalQueueName)
	}
	return checkText("internal queue name", name)
}

// checkAnyQueueName accepts a public or an internal queue name.
func checkAnyQueueName(name string) error {
	if IsInternalQueue(name) {
		return CheckInternalQueueName(name)
	}
	return CheckQueueName(name)
}

// checkText refuses text that is not UTF-8 or holds a control character.
func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not UTF-8", ErrInvalid, what, truncate(s, 40))
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %q holds the control character %U", ErrInvalid, what, truncate(s, 40), r)
		}
	}
	return nil
}

// DeadQueue is the name of the dead-letter queue of queue.
func DeadQueue(queue string) string { return queue + deadSuffix }

// DeadLetterOf reports whether queue is a dead-letter queue (its name ends
// in ".dead") and which queue it serves. A dead-letter queue's messages are
// never dead-lettered again: a failed lease of one returns it to the
// dead-letter queue, however many attempts it has had.
func DeadLetterOf(queue string) (origin string, ok bool) {
	origin, ok = strings.CutSuffix(queue, deadSuffix)
	return origin, ok && origin != ""
}

// Message is one queued message.
type Message struct {
	Queue string
	ID    uint64 // increases per queue, from 1
	Value []byte
	// Count is how many times the message was handed out: soft gets, leases
	// and live deliveries (RestMQ's "count").
	Count int64
	// Attempts is how many leases of the message failed (expired or nacked).
	Attempts int
	Created  time.Time
	// Expires is when the message stops being deliverable; zero means never.
	Expires time.Time
	// Error is the last error a consumer gave when it nacked the message.
	Error string
}

// Key is the message's RestMQ key, "queue:id".
func (m Message) Key() string { return m.Queue + ":" + strconv.FormatUint(m.ID, 10) }

// Expired reports whether the message's TTL has passed at now.
func (m Message) Expired(now time.Time) bool {
	return !m.Expires.IsZero() && !now.Before(m.Expires)
}

// ParseKey splits a RestMQ key "queue:id".
func ParseKey(key string) (queue string, id uint64, err error) {
	i := strings.LastIndexByte(key, ':')
	if i <= 0 {
		return "", 0, fmt.Errorf("%w: key %q is not queue:id", ErrInvalid, truncate(key, 60))
	}
	id, err = strconv.ParseUint(key[i+1:], 10, 64)
	if err != nil || id == 0 {
		return "", 0, fmt.Errorf("%w: key %q is not queue:id", ErrInvalid, truncate(key, 60))
	}
	queue = key[:i]
	if err := CheckQueueName(queue); err != nil {
		return "", 0, err
	}
	return queue, id, nil
}

// Lease is a message handed to one consumer until Deadline. Until it is acked
// the message stays in the store; if the deadline passes the message returns
// to the head of its queue.
type Lease struct {
	ID       string
	Message  Message
	Deadline time.Time
}

// Status is whether a queue delivers messages.
type Status string

// Queue statuses.
const (
	StatusActive Status = "active"
	StatusPaused Status = "paused"
)

// Policy is how live consumers of one queue share its messages.
type Policy string

// Delivery policies.
const (
	PolicyBroadcast  Policy = "broadcast"
	PolicyRoundRobin Policy = "roundrobin"
)

// DefaultPolicy is a new queue's policy: as in RestMQ, every live consumer
// gets every message until the queue is set to round-robin.
const DefaultPolicy = PolicyBroadcast

// ParsePolicy validates a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case PolicyBroadcast, PolicyRoundRobin:
		return Policy(s), nil
	}
	return "", fmt.Errorf("%w: policy %q must be broadcast or roundrobin", ErrInvalid, truncate(s, 40))
}

// QueueInfo is a queue's state and totals.
type QueueInfo struct {
	Name     string `json:"name"`
	Length   int64  `json:"length"`    // messages waiting: ready, and nacked ones waiting out a delay
	InFlight int64  `json:"in_flight"` // messages under a live lease
	Status   Status `json:"status"`
	Policy   Policy `json:"policy"`
	LastID   uint64 `json:"last_id"`
	// Totals since the queue was created.
	Pushed       int64     `json:"pushed"`
	Delivered    int64     `json:"delivered"`
	Acked        int64     `json:"acked"`
	DeadLettered int64     `json:"dead_lettered"`
	Created      time.Time `json:"created"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
