package pubsub

import "time"

// Default limits, used for every Config field left at zero.
const (
	DefaultMaxMessage     = 64 << 10
	DefaultMaxSubscribers = 10_000
	DefaultBuffer         = 64
	DefaultWriteTimeout   = 5 * time.Second
)

// Config bounds a Hub. The zero value of any field means its default.
type Config struct {
	// MaxMessage is the largest message, in bytes, that may be published:
	// a WebSocket frame longer than this closes its sender's connection, and
	// Publish refuses a longer payload.
	MaxMessage int64
	// MaxSubscribers is how many subscribers one channel may have at once.
	MaxSubscribers int
	// Buffer is how many events may wait for one subscriber. A subscriber
	// whose buffer is full when an event arrives is dropped (ErrSlow), so
	// that a reader that cannot keep up never holds back the publisher.
	Buffer int
	// WriteTimeout bounds each write of an event to a subscriber's
	// connection. The Hub does no I/O itself; transports read it from Config.
	WriteTimeout time.Duration
	// Server names this server in its members' presence (Member.Server),
	// so that the members of a channel spanning servers say where they are.
	Server string
}

// withDefaults returns c with every zero or negative field at its default.
func (c Config) withDefaults() Config {
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.MaxSubscribers <= 0 {
		c.MaxSubscribers = DefaultMaxSubscribers
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	return c
}
