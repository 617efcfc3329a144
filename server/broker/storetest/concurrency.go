package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Sizes of the concurrent cases.
const (
	workers     = 8
	perWorker   = 200
	pushBatch   = 10
	leaseBatch  = 7
	concurrentN = workers * perWorker
)

// concurrencyCases run many goroutines against one store at once: every
// message is delivered exactly once, none is lost and ids stay unique.
func concurrencyCases() []storeCase {
	return []storeCase{
		{"PushAndLeaseAtOnce", pushAndLeaseAtOnce},
		{"TakesAtOnce", func(t *testing.T, s broker.Store) {
			for range workers {
				pushN(t, s, "q", perWorker)
			}
			seen := newTally()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for {
						m, err := s.QueueTake(t.Context(), "q", base)
						if errors.Is(err, broker.ErrQueueEmpty) {
							return
						}
						if err != nil {
							t.Errorf("QueueTake: %v", err)
							return
						}
						seen.add(m.ID)
					}
				})
			}
			wg.Wait()
			seen.check(t, "taken", concurrentN)
			qi := info(t, s, "q")
			equal(t, "Delivered", qi.Delivered, concurrentN)
			equal(t, "Length", qi.Length, 0)
		}},
		{"PushesToTwoQueuesAtOnce", func(t *testing.T, s broker.Store) {
			tallies := []*tally{newTally(), newTally()}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					q := w % 2
					for i := range perWorker {
						got, err := s.QueuePush(t.Context(), broker.QueuePushParams{
							Queue: fmt.Sprint("q", q), Messages: []broker.NewMessage{{Value: fmt.Appendf(nil, "%d-%d", w, i)}}, Now: base,
						})
						if err != nil || len(got) != 1 {
							t.Errorf("QueuePush = %d messages, %v; want 1, nil", len(got), err)
							return
						}
						tallies[q].add(got[0].ID)
					}
				})
			}
			wg.Wait()
			for q, tl := range tallies {
				tl.check(t, fmt.Sprint("ids pushed to q", q), concurrentN/2)
			}
		}},
		{"KVSetIsAtomic", func(t *testing.T, s broker.Store) {
			var done atomic.Bool
			var wg sync.WaitGroup
			wg.Go(func() {
				defer done.Store(true)
				for i := range perWorker {
					v := fmt.Sprint(i)
					if err := s.KVSet(t.Context(), []broker.KVEntry{kv("a", v, false), kv("b", v, false)}); err != nil {
						t.Errorf("KVSet: %v", err)
						return
					}
				}
			})
			for range workers / 2 {
				wg.Go(func() {
					for !done.Load() {
						vs, err := s.KVMGet(t.Context(), []string{"a", "b"})
						if err != nil || len(vs) != 2 {
							t.Errorf("KVMGet a b = %d values, %v; want 2, nil", len(vs), err)
							return
						}
						if (vs[0] == nil) != (vs[1] == nil) || vs[0] != nil && !bytes.Equal(vs[0].Data, vs[1].Data) {
							t.Errorf("KVMGet a b saw half of one KVSet: %v and %v", vs[0], vs[1])
							return
						}
						runtime.Gosched()
					}
				})
			}
			wg.Wait()
			sameKV(t, "KVGet a at the end", kvGet(t, s, "a"), broker.KVValue{Data: fmt.Append(nil, perWorker-1)})
		}},
	}
}

// pushAndLeaseAtOnce has producers push in batches while consumers lease and
// ack; leases never expire, since every call passes the same now.
func pushAndLeaseAtOnce(t *testing.T, s broker.Store) {
	pushed, delivered := newTally(), newTally()
	var producing sync.WaitGroup
	var producersDone atomic.Bool
	for range workers {
		producing.Go(func() {
			for range perWorker / pushBatch {
				got, err := s.QueuePush(t.Context(), broker.QueuePushParams{Queue: "q", Messages: make([]broker.NewMessage, pushBatch), Now: base})
				if err != nil || len(got) != pushBatch {
					t.Errorf("QueuePush = %d messages, %v; want %d, nil", len(got), err, pushBatch)
					return
				}
				for i, m := range got {
					if m.ID != got[0].ID+uint64(i) {
						t.Errorf("ids of one batch = %v, want consecutive", ids(got))
					}
					pushed.add(m.ID)
				}
			}
		})
	}
	var consuming sync.WaitGroup
	for range workers {
		consuming.Go(func() {
			for {
				// Read before leasing: an empty lease after the producers
				// finished means whatever is left is in another's hands.
				finished := producersDone.Load()
				ls, err := s.QueueLease(t.Context(), broker.QueueLeaseParams{Queue: "q", N: leaseBatch, Visibility: time.Hour, Now: base})
				if err != nil {
					t.Errorf("QueueLease: %v", err)
					return
				}
				if len(ls) == 0 {
					if finished {
						return
					}
					runtime.Gosched()
					continue
				}
				for _, l := range ls {
					delivered.add(l.Message.ID)
				}
				if unknown, err := s.LeaseAck(t.Context(), "q", leaseIDs(ls)); err != nil || len(unknown) != 0 {
					t.Errorf("LeaseAck of live leases: unknown %q, %v; want none, nil", unknown, err)
				}
			}
		})
	}
	producing.Wait()
	producersDone.Store(true)
	consuming.Wait()

	pushed.check(t, "pushed", concurrentN)
	delivered.check(t, "delivered", concurrentN)
	qi := info(t, s, "q")
	equal(t, "Length", qi.Length, 0)
	equal(t, "InFlight", qi.InFlight, 0)
	equal(t, "Pushed", qi.Pushed, concurrentN)
	equal(t, "Acked", qi.Acked, concurrentN)
	equal(t, "LastID", qi.LastID, concurrentN)
}

// pushN pushes n numbered messages in one batch.
func pushN(t *testing.T, s broker.Store, queue string, n int) {
	t.Helper()
	msgs := make([]broker.NewMessage, n)
	for i := range msgs {
		msgs[i] = broker.NewMessage{Value: fmt.Append(nil, i)}
	}
	pushMessages(t, s, queue, base, msgs...)
}

// tally counts how often each id was seen, from many goroutines.
type tally struct {
	mu   sync.Mutex
	seen map[uint64]int
}

func newTally() *tally { return &tally{seen: map[uint64]int{}} }

func (tl *tally) add(id uint64) {
	tl.mu.Lock()
	tl.seen[id]++
	tl.mu.Unlock()
}

// check wants exactly the ids 1..n, each once.
func (tl *tally) check(t *testing.T, what string, n int) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var missing, repeated []uint64
	for id := uint64(1); id <= uint64(n); id++ {
		switch c := tl.seen[id]; {
		case c == 0:
			missing = append(missing, id)
		case c > 1:
			repeated = append(repeated, id)
		}
	}
	if len(missing) > 0 || len(repeated) > 0 || len(tl.seen) != n {
		t.Errorf("%s: %d distinct ids, missing %v, repeated %v; want ids 1..%d once each",
			what, len(tl.seen), clipIDs(missing), clipIDs(repeated), n)
	}
}

func clipIDs(ids []uint64) []uint64 {
	if len(ids) > 20 {
		return ids[:20]
	}
	return ids
}
