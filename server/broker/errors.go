package broker

import "errors"

// Sentinel errors callers branch on. The HTTP layer maps each to a status code
// in one table (server/httpapi/errors.go).
var (
	// ErrQueueEmpty means a get or take found no message ready for delivery.
	ErrQueueEmpty = errors.New("queue is empty")
	// ErrQueuePaused means delivery on the queue is stopped by /control.
	ErrQueuePaused = errors.New("queue is paused")
	// ErrQueueNotFound means nothing was ever pushed to the queue (or it was purged).
	ErrQueueNotFound = errors.New("queue not found")
	// ErrMessageNotFound means no message has the given key.
	ErrMessageNotFound = errors.New("message not found")
	// ErrLeaseNotFound means the lease id is unknown: never issued, already
	// acked or nacked, or expired and handed to someone else.
	ErrLeaseNotFound = errors.New("lease not found")
	// ErrInvalid wraps every validation failure of caller input.
	ErrInvalid = errors.New("invalid argument")
	// ErrKeyNotFound means a key/value key is absent or expired.
	ErrKeyNotFound = errors.New("key not found")
	// ErrConsumerSlow means a live consumer was dropped because it could
	// not keep up with a broadcast.
	ErrConsumerSlow = errors.New("consumer too slow")
	// ErrRecordNotFound means no engine record has the given key.
	ErrRecordNotFound = errors.New("record not found")
	// ErrClosed means the broker or store has been closed.
	ErrClosed = errors.New("closed")
)
