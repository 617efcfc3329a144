package buntstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/buntstore"
)

// After churn the file returns near its size before: 50,000 queues pushed
// to and purged leave a file about as small as it was, once the shrinker
// has rewritten it.
func TestFileShrinksAfterChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("50,000 queues")
	}
	s := open(t, t.TempDir())
	ctx := context.Background()
	now := time.Now()
	// Something that stays: a few queues and keys.
	for i := range 50 {
		if _, err := s.QueuePush(ctx, broker.QueuePushParams{Queue: "keep" + strconv.Itoa(i), Messages: []broker.NewMessage{{Value: make([]byte, 100)}}, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.FileSize()
	const queues = 50_000
	for i := range queues {
		q := "churn-" + strconv.Itoa(i)
		if _, err := s.QueuePush(ctx, broker.QueuePushParams{Queue: q, Messages: []broker.NewMessage{{Value: make([]byte, 100)}, {Value: make([]byte, 100)}}, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	peak, _ := s.FileSize()
	for i := range queues {
		if err := s.QueuePurge(ctx, "churn-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	purged, _ := s.FileSize()
	// The shrinker looks every two seconds; wait for it to rewrite.
	// A file under ShrinkMinSize is never rewritten, so a rewrite that ran
	// while the purges went on may leave up to that much.
	limit := max(2*before, int64(buntstore.DefaultShrinkMinSize))
	after := purged
	for deadline := time.Now().Add(30 * time.Second); after > limit && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		after, _ = s.FileSize()
	}
	t.Logf("file before %d KiB, after 50,000 pushes %d KiB, after their purges %d KiB, rewritten %d KiB (%.2fx the size before, %.4fx the peak)",
		before>>10, peak>>10, purged>>10, after>>10, float64(after)/float64(before), float64(after)/float64(peak))
	if after > limit {
		t.Errorf("the file is %d bytes 30 s after the churn, want at most %d (it was %d before)", after, limit, before)
	}
}
