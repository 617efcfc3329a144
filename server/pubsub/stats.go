package pubsub

// Stats are a Hub's current sizes and totals since New, for metrics.
type Stats struct {
	// Channels is how many channels have at least one subscriber.
	Channels int `json:"channels"`
	// Subscribers is how many subscribers all channels have together.
	Subscribers int64 `json:"subscribers"`
	// Published counts messages published, whether or not anyone received them.
	Published int64 `json:"published"`
	// Delivered counts events (messages, joins, leaves) queued to subscribers.
	Delivered int64 `json:"delivered"`
	// Dropped counts subscribers dropped because they could not keep up.
	Dropped int64 `json:"dropped"`
}

// Stats returns the Hub's current sizes and totals.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.channels)
	h.mu.Unlock()
	return Stats{
		Channels:    n,
		Subscribers: h.subscribers.Load(),
		Published:   h.published.Load(),
		Delivered:   h.delivered.Load(),
		Dropped:     h.dropped.Load(),
	}
}
