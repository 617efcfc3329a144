package storetest

import (
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// pushCases pin down QueuePush: ids, message fields and the queue it creates.
func pushCases() []storeCase {
	return []storeCase{
		{"IDsStartAtOneAndIncrease", func(t *testing.T, s broker.Store) {
			got := push(t, s, "q", base, "a", "b", "c")
			sameSlice(t, "ids of first push", ids(got), []uint64{1, 2, 3})
			for i, m := range got {
				checkNew(t, m, "q", []byte("abc"[i:i+1]), base, time.Time{})
			}
			later := push(t, s, "q", at(time.Second), "d")
			sameSlice(t, "ids of second push", ids(later), []uint64{4})
		}},
		{"IDsArePerQueue", func(t *testing.T, s broker.Store) {
			sameSlice(t, "ids in a", ids(push(t, s, "a", base, "x", "y")), []uint64{1, 2})
			sameSlice(t, "ids in b", ids(push(t, s, "b", base, "x")), []uint64{1})
			sameSlice(t, "ids in a again", ids(push(t, s, "a", base, "z")), []uint64{3})
		}},
		{"BatchIDsAreConsecutive", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "first")
			got := push(t, s, "q", base, "b1", "b2", "b3", "b4", "b5")
			sameSlice(t, "ids of batch", ids(got), []uint64{2, 3, 4, 5, 6})
			sameSlice(t, "values taken", drain(t, s, "q", base), []string{"first", "b1", "b2", "b3", "b4", "b5"})
		}},
		{"TTLSetsExpires", func(t *testing.T, s broker.Store) {
			got := pushMessages(t, s, "q", base,
				broker.NewMessage{Value: []byte("short"), TTL: 30 * time.Second},
				broker.NewMessage{Value: []byte("never")},
			)
			checkNew(t, got[0], "q", []byte("short"), base, at(30*time.Second))
			checkNew(t, got[1], "q", []byte("never"), base, time.Time{})
		}},
		{"QueueStateAfterPush", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			push(t, s, "q", at(time.Minute), "c")
			qi := info(t, s, "q")
			equal(t, "Name", qi.Name, "q")
			equal(t, "Length", qi.Length, 3)
			equal(t, "InFlight", qi.InFlight, 0)
			equal(t, "Pushed", qi.Pushed, 3)
			equal(t, "LastID", qi.LastID, 3)
			equal(t, "Status", qi.Status, broker.StatusActive)
			equal(t, "Policy (the default)", qi.Policy, broker.DefaultPolicy)
			sameTime(t, "Created (the first push)", qi.Created, base)
		}},
		{"IDsAreNeverReusedAfterEmptying", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			drain(t, s, "q", base)
			sameSlice(t, "id after emptying", ids(push(t, s, "q", base, "c")), []uint64{3})
			equal(t, "LastID", info(t, s, "q").LastID, 3)
		}},
	}
}

// checkNew checks a message as QueuePush returns it.
func checkNew(t *testing.T, m broker.Message, queue string, value []byte, created, expires time.Time) {
	t.Helper()
	equal(t, "Queue", m.Queue, queue)
	sameBytes(t, "Value", m.Value, value)
	sameTime(t, "Created", m.Created, created)
	sameTime(t, "Expires", m.Expires, expires)
	equal(t, "Count", m.Count, 0)
	equal(t, "Attempts", m.Attempts, 0)
	equal(t, "Error", m.Error, "")
}

// takePeekCases pin down the hard and soft gets.
func takePeekCases() []storeCase {
	cases := []storeCase{
		{"TakeReturnsOldestAndRemovesIt", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b", "c")
			m := take(t, s, "q", base)
			equal(t, "taken id", m.ID, 1)
			sameBytes(t, "taken value", m.Value, []byte("a"))
			qi := info(t, s, "q")
			equal(t, "Length after one take", qi.Length, 2)
			equal(t, "Delivered after one take", qi.Delivered, 1)
			sameSlice(t, "rest taken", drain(t, s, "q", base), []string{"b", "c"})
			qi = info(t, s, "q")
			equal(t, "Length after draining", qi.Length, 0)
			equal(t, "Delivered after draining", qi.Delivered, 3)
			wantEmpty(t, s, "q", base)
		}},
		{"UnknownQueueIsEmpty", func(t *testing.T, s broker.Store) {
			wantEmpty(t, s, "nosuch", base)
		}},
		{"PeekKeepsAndCounts", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			for want := int64(1); want <= 2; want++ {
				m := peek(t, s, "q", base)
				equal(t, "peeked id", m.ID, 1)
				equal(t, "peeked Count", m.Count, want)
			}
			equal(t, "Length after peeks", info(t, s, "q").Length, 2)
			equal(t, "taken after peeks", take(t, s, "q", base).ID, 1)
		}},
		{"NotExpiredJustBeforeExpires", func(t *testing.T, s broker.Store) {
			pushMessages(t, s, "q", base, broker.NewMessage{Value: []byte("a"), TTL: time.Minute})
			sameBytes(t, "peeked 1ns before Expires", peek(t, s, "q", at(time.Minute-time.Nanosecond)).Value, []byte("a"))
		}},
		{"AllExpiredIsEmpty", func(t *testing.T, s broker.Store) {
			pushMessages(t, s, "q", base, broker.NewMessage{Value: []byte("a"), TTL: time.Minute})
			wantEmpty(t, s, "q", at(2*time.Minute))
		}},
	}
	for _, g := range getters {
		cases = append(cases, storeCase{"ExpiredSkippedBy" + g.name, func(t *testing.T, s broker.Store) {
			pushMessages(t, s, "q", base,
				broker.NewMessage{Value: []byte("a"), TTL: time.Minute},
				broker.NewMessage{Value: []byte("b")},
			)
			m := g.get(t, s, "q", at(time.Minute)) // exactly at a's Expires
			equal(t, g.name+" at a's Expires: id", m.ID, 2)
			// a is dropped, not merely skipped.
			depth(t, s, "q", g.length, g.inFlight)
		}})
	}
	return cases
}

// getters are the three ways to get a message, with the queue depth each
// leaves behind after getting one of two messages when the other expired.
var getters = []struct {
	name             string
	get              func(t *testing.T, s broker.Store, queue string, now time.Time) broker.Message
	length, inFlight int64
}{
	{"Take", take, 0, 0},
	{"Peek", peek, 1, 0},
	{"Lease", func(t *testing.T, s broker.Store, queue string, now time.Time) broker.Message {
		t.Helper()
		return leaseOne(t, s, queue, now).Message
	}, 0, 1},
}
