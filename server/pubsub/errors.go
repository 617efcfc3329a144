package pubsub

import (
	"errors"
	"fmt"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Errors callers branch on. Invalid channel names and oversized messages are
// reported with errors wrapping broker.ErrInvalid.
var (
	// ErrChannelFull means the channel already has Config.MaxSubscribers.
	ErrChannelFull = errors.New("channel is full")
	// ErrSlow is why a subscriber was dropped when its event buffer was full.
	ErrSlow = errors.New("subscriber cannot keep up")
	// ErrClosed means the Hub has been closed. It wraps broker.ErrClosed, so
	// the HTTP layer answers it like any other closed component.
	ErrClosed = fmt.Errorf("pubsub hub: %w", broker.ErrClosed)
)
