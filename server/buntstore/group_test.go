package buntstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// TestGroupedPushesAndTakes pushes and takes from many goroutines at once
// under fsync always, where every commit waits for the disk and calls pile
// up behind it: they must share transactions, every push must get an id
// of its own in one unbroken run, and every message must be taken once.
func TestGroupedPushesAndTakes(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Fsync: FsyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const goroutines, each = 16, 40
	ids := make(chan uint64, goroutines*each)
	run(t, goroutines, func(g int) error {
		for i := range each {
			out, err := s.QueuePush(ctx, broker.QueuePushParams{Queue: "q", Now: time.Now(),
				Messages: []broker.NewMessage{{Value: []byte(fmt.Sprintf("%d/%d", g, i))}}})
			if err != nil {
				return err
			}
			ids <- out[0].ID
		}
		return nil
	})
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		if seen[id] || id == 0 || id > goroutines*each {
			t.Fatalf("push got id %d twice or outside 1..%d", id, goroutines*each)
		}
		seen[id] = true
	}
	if n := s.pushes.shared.Load(); n == 0 {
		t.Errorf("no push shared a transaction among %d at once under fsync always, want some", goroutines)
	}
	values := make(chan string, goroutines*each)
	run(t, goroutines, func(int) error {
		for {
			m, err := s.QueueTake(ctx, "q", time.Now())
			if errors.Is(err, broker.ErrQueueEmpty) {
				return nil
			}
			if err != nil {
				return err
			}
			values <- string(m.Value)
		}
	})
	close(values)
	taken := map[string]bool{}
	for v := range values {
		if taken[v] {
			t.Fatalf("message %q taken twice", v)
		}
		taken[v] = true
	}
	if len(taken) != goroutines*each {
		t.Errorf("took %d messages, want %d", len(taken), goroutines*each)
	}
	if n := s.takes.shared.Load(); n == 0 {
		t.Errorf("no take shared a transaction among %d at once under fsync always, want some", goroutines)
	}
	if info, err := s.QueueGet(ctx, "q"); err != nil || info.Length != 0 {
		t.Errorf("queue after taking all: %+v, %v; want length 0", info, err)
	}
}

// TestGroupedPushFailsAlone: a push whose queue state is unreadable fails,
// and the pushes grouped with it still land.
func TestGroupedPushFailsAlone(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Fsync: FsyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(metaKey("bad"), "not a queue state", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const goroutines, each = 16, 20
	var mu sync.Mutex
	good := 0
	run(t, goroutines, func(g int) error {
		for range each {
			q := "good"
			if g%4 == 0 {
				q = "bad"
			}
			_, err := s.QueuePush(ctx, broker.QueuePushParams{Queue: q, Now: time.Now(),
				Messages: []broker.NewMessage{{Value: []byte("v")}}})
			switch {
			case q == "bad" && err == nil:
				return errors.New("a push to a queue with a broken state succeeded")
			case q == "good" && err != nil:
				return fmt.Errorf("a push to a sound queue failed: %w", err)
			case q == "good":
				mu.Lock()
				good++
				mu.Unlock()
			}
		}
		return nil
	})
	info, err := s.QueueGet(ctx, "good")
	if err != nil || info.Length != int64(good) || good != goroutines*each*3/4 {
		t.Errorf("queue good: %+v, %v; want length %d", info, err, goroutines*each*3/4)
	}
}

// run runs fn on n goroutines and fails the test with the first error.
func run(t *testing.T, n int, fn func(g int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- fn(g) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueueTakeN takes the oldest messages in order, passes over (and
// removes) expired ones, takes no more than there are, and says
// ErrQueueEmpty when none is left.
func TestQueueTakeN(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	var msgs []broker.NewMessage
	for i := range 6 {
		m := broker.NewMessage{Value: []byte(fmt.Sprint(i))}
		if i%3 == 1 {
			m.TTL = time.Millisecond // expired when taken below
		}
		msgs = append(msgs, m)
	}
	if _, err := s.QueuePush(ctx, broker.QueuePushParams{Queue: "q", Messages: msgs, Now: now}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Second)
	got, err := s.QueueTakeN(ctx, "q", 3, later)
	if err != nil || len(got) != 3 || string(got[0].Value) != "0" || string(got[1].Value) != "2" || string(got[2].Value) != "3" {
		t.Fatalf("QueueTakeN 3 = %v, %v; want 0, 2, 3", got, err)
	}
	got, err = s.QueueTakeN(ctx, "q", 10, later)
	if err != nil || len(got) != 1 || string(got[0].Value) != "5" {
		t.Fatalf("QueueTakeN 10 = %v, %v; want only 5", got, err)
	}
	if _, err := s.QueueTakeN(ctx, "q", 10, later); !errors.Is(err, broker.ErrQueueEmpty) {
		t.Errorf("QueueTakeN of an empty queue: %v, want ErrQueueEmpty", err)
	}
	if info, err := s.QueueGet(ctx, "q"); err != nil || info.Length != 0 || info.Delivered != 4 {
		t.Errorf("queue after: %+v, %v; want length 0, 4 delivered", info, err)
	}
	if _, err := s.QueueTakeN(ctx, "none", 1, later); !errors.Is(err, broker.ErrQueueEmpty) {
		t.Errorf("QueueTakeN of an unknown queue: %v, want ErrQueueEmpty", err)
	}
}

// TestHardGetsGather takes from many goroutines on one processor with no
// fsync to wait for: nothing would make a take wait for another, yet a
// take that finds no transaction running yields once before it starts one,
// so the takes that are ready to come share it. Every message is taken
// once, and most takes shared a transaction.
func TestHardGetsGather(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := openTest(t)
	const goroutines, each = 16, 40
	pushN(t, s, "q", goroutines*each, time.Now())
	ids := make(chan uint64, goroutines*each)
	run(t, goroutines, func(int) error {
		for range each {
			m, err := s.QueueTake(context.Background(), "q", time.Now())
			if err != nil {
				return err
			}
			ids <- m.ID
		}
		return nil
	})
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("message %d taken twice", id)
		}
		seen[id] = true
	}
	if info, err := s.QueueGet(t.Context(), "q"); err != nil || info.Length != 0 || info.Delivered != goroutines*each {
		t.Errorf("queue after the takes: %+v, %v", info, err)
	}
	if n := s.takes.shared.Load(); n < goroutines*each/2 {
		t.Errorf("%d of %d takes shared a transaction, want at least half", n, goroutines*each)
	}
}
