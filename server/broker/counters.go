package broker

import "sync/atomic"

// Counters are the running broker's operation totals since it started, by
// kind; per-queue totals that survive restarts live in QueueInfo.
type Counters struct {
	Pushes, Takes, Peeks, Leases, LiveDeliveries, Acks, Nacks, Expired atomic.Int64
}

// CounterValues is a snapshot of Counters.
type CounterValues struct {
	Pushes, Takes, Peeks, Leases, LiveDeliveries, Acks, Nacks, Expired int64
}

// Counters returns a snapshot of the broker's operation totals.
func (b *Broker) Counters() CounterValues {
	c := &b.counters
	return CounterValues{
		Pushes: c.Pushes.Load(), Takes: c.Takes.Load(), Peeks: c.Peeks.Load(), Leases: c.Leases.Load(),
		LiveDeliveries: c.LiveDeliveries.Load(), Acks: c.Acks.Load(), Nacks: c.Nacks.Load(), Expired: c.Expired.Load(),
	}
}
