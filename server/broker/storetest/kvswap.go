package storetest

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// kvSwapCases pin down Store.KVSwap: conditions checked against the values
// before the call, all changes or none, the earlier values returned.
func kvSwapCases() []storeCase {
	return []storeCase{
		{"IfAbsentSetsOnce", func(t *testing.T, s broker.Store) {
			res := swap(t, s, put("k", "1", broker.KVIfAbsent))
			equal(t, "first Applied", res.Applied, true)
			equal(t, "first Prev is absent", res.Prev[0] == nil, true)
			res = swap(t, s, put("k", "2", broker.KVIfAbsent))
			equal(t, "second Applied", res.Applied, false)
			samePrev(t, "second Prev", res.Prev[0], "1")
			sameKV(t, "KVGet", kvGet(t, s, "k"), broker.KVValue{Data: []byte("1")})
		}},
		{"IfPresentOnMissingWritesNothing", func(t *testing.T, s broker.Store) {
			res := swap(t, s, put("k", "1", broker.KVIfPresent))
			equal(t, "Applied", res.Applied, false)
			_, err := s.KVGet(t.Context(), "k")
			isErr(t, "KVGet", err, broker.ErrKeyNotFound)
		}},
		{"IfEqualComparesDataAndRaw", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("k", "5", false))
			e := put("k", "6", broker.KVIfEqual)
			e.Equal = broker.KVValue{Data: []byte("5"), Raw: true}
			equal(t, "Applied with Raw differing", swap(t, s, e).Applied, false)
			e.Equal = broker.KVValue{Data: []byte("4")}
			equal(t, "Applied with Data differing", swap(t, s, e).Applied, false)
			e.Equal = broker.KVValue{Data: []byte("5")}
			equal(t, "Applied with the same value", swap(t, s, e).Applied, true)
			sameKV(t, "KVGet", kvGet(t, s, "k"), broker.KVValue{Data: []byte("6")})
		}},
		{"IfEqualOnMissingFails", func(t *testing.T, s broker.Store) {
			e := put("k", "6", broker.KVIfEqual)
			e.Equal = broker.KVValue{}
			equal(t, "Applied", swap(t, s, e).Applied, false)
		}},
		{"AllOrNothing", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("b", "taken", false))
			res := swap(t, s, put("a", "1", broker.KVAlways), put("b", "2", broker.KVIfAbsent))
			equal(t, "Applied", res.Applied, false)
			_, err := s.KVGet(t.Context(), "a")
			isErr(t, "KVGet a after a refused swap", err, broker.ErrKeyNotFound)
			samePrev(t, "Prev of b", res.Prev[1], "taken")
		}},
		// Decided here: every Prev is the value before the call, even for a
		// key an earlier entry of the same call changed; the last change wins.
		{"PrevIsBeforeTheCall", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("k", "0", false))
			res := swap(t, s, put("k", "1", broker.KVAlways), put("k", "2", broker.KVIfEqual, "0"))
			equal(t, "Applied", res.Applied, true)
			samePrev(t, "Prev 0", res.Prev[0], "0")
			samePrev(t, "Prev 1", res.Prev[1], "0")
			sameKV(t, "KVGet", kvGet(t, s, "k"), broker.KVValue{Data: []byte("2")})
		}},
		{"Remove", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("a", "1", true))
			res := swap(t, s, broker.KVSwapEntry{Key: "a", Op: broker.KVRemove}, broker.KVSwapEntry{Key: "b", Op: broker.KVRemove})
			equal(t, "Applied", res.Applied, true)
			equal(t, "Prev of a is there", res.Prev[0] != nil, true)
			equal(t, "Prev of b is absent", res.Prev[1] == nil, true)
			_, err := s.KVGet(t.Context(), "a")
			isErr(t, "KVGet a", err, broker.ErrKeyNotFound)
		}},
		{"CheckGuardsAnotherKey", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("lock", "me", true))
			guard := broker.KVSwapEntry{Key: "lock", If: broker.KVIfEqual, Equal: broker.KVValue{Data: []byte("you"), Raw: true}, Op: broker.KVCheck}
			equal(t, "Applied under another's lock", swap(t, s, guard, put("data", "x", broker.KVAlways)).Applied, false)
			guard.Equal.Data = []byte("me")
			equal(t, "Applied under one's own lock", swap(t, s, guard, put("data", "x", broker.KVAlways)).Applied, true)
			sameKV(t, "lock after a check", kvGet(t, s, "lock"), broker.KVValue{Data: []byte("me"), Raw: true})
		}},
		{"ExpireKeepsTheValue", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("k", "v", true))
			before := time.Now()
			res := swap(t, s, broker.KVSwapEntry{Key: "k", If: broker.KVIfPresent, Op: broker.KVExpire, TTL: time.Hour})
			equal(t, "Applied", res.Applied, true)
			got := kvGet(t, s, "k")
			sameKV(t, "KVGet", got, broker.KVValue{Data: []byte("v"), Raw: true})
			expiresNear(t, "Expires after KVExpire 1h", got.Expires, before, time.Hour)
			swap(t, s, broker.KVSwapEntry{Key: "k", Op: broker.KVExpire})
			equal(t, "Expires after KVExpire 0 is zero", kvGet(t, s, "k").Expires.IsZero(), true)
		}},
		{"ExpireOnMissingCreatesNothing", func(t *testing.T, s broker.Store) {
			swap(t, s, broker.KVSwapEntry{Key: "k", Op: broker.KVExpire, TTL: time.Hour})
			_, err := s.KVGet(t.Context(), "k")
			isErr(t, "KVGet", err, broker.ErrKeyNotFound)
		}},
		{"KeepTTL", func(t *testing.T, s broker.Store) {
			before := time.Now()
			kvSet(t, s, broker.KVEntry{Key: "k", Value: broker.KVValue{Data: []byte("1")}, TTL: time.Hour})
			e := put("k", "2", broker.KVAlways)
			e.KeepTTL = true
			swap(t, s, e)
			got := kvGet(t, s, "k")
			sameKV(t, "KVGet after KeepTTL", got, broker.KVValue{Data: []byte("2")})
			expiresNear(t, "Expires after KeepTTL", got.Expires, before, time.Hour)
			swap(t, s, put("k", "3", broker.KVAlways))
			equal(t, "Expires after a plain put is zero", kvGet(t, s, "k").Expires.IsZero(), true)
			e = put("new", "1", broker.KVAlways)
			e.KeepTTL = true
			swap(t, s, e)
			equal(t, "Expires of a new key put with KeepTTL is zero", kvGet(t, s, "new").Expires.IsZero(), true)
		}},
		{"PutWithTTL", func(t *testing.T, s broker.Store) {
			before := time.Now()
			e := put("k", "1", broker.KVAlways)
			e.TTL = time.Hour
			swap(t, s, e)
			expiresNear(t, "Expires", kvGet(t, s, "k").Expires, before, time.Hour)
		}},
		// KV TTLs run on the real clock: a nanosecond has passed by the next
		// call, so the key is absent to it.
		{"ExpiredIsAbsent", func(t *testing.T, s broker.Store) {
			kvSet(t, s, broker.KVEntry{Key: "k", Value: broker.KVValue{Data: []byte("old")}, TTL: time.Nanosecond})
			time.Sleep(time.Millisecond)
			res := swap(t, s, put("k", "new", broker.KVIfAbsent))
			equal(t, "Applied over an expired key", res.Applied, true)
			equal(t, "Prev of an expired key is absent", res.Prev[0] == nil, true)
			got := kvGet(t, s, "k")
			sameKV(t, "KVGet", got, broker.KVValue{Data: []byte("new")})
			equal(t, "Expires is zero", got.Expires.IsZero(), true)
		}},
		// Many writers incrementing one counter by compare-and-swap lose no
		// increment: the check and the write are one transaction.
		{"CounterAtOnce", func(t *testing.T, s broker.Store) {
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range perWorker / 4 {
						if err := incrBySwap(t, s, "n"); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			sameKV(t, "counter", kvGet(t, s, "n"), broker.KVValue{Data: []byte(strconv.Itoa(workers * (perWorker / 4)))})
		}},
	}
}

// put is an entry that stores data (JSON, not raw) under condition cond;
// with KVIfEqual, equal gives the expected data.
func put(key, data string, cond broker.KVCond, equal ...string) broker.KVSwapEntry {
	e := broker.KVSwapEntry{Key: key, If: cond, Op: broker.KVPut, Value: broker.KVValue{Data: []byte(data)}}
	if len(equal) > 0 {
		e.Equal = broker.KVValue{Data: []byte(equal[0])}
	}
	return e
}

func swap(t *testing.T, s broker.Store, entries ...broker.KVSwapEntry) broker.KVSwapResult {
	t.Helper()
	res, err := s.KVSwap(t.Context(), broker.KVSwapParams{Entries: entries})
	must(t, "KVSwap", err)
	if len(res.Prev) != len(entries) {
		t.Fatalf("KVSwap of %d entries returned %d earlier values", len(entries), len(res.Prev))
	}
	return res
}

func samePrev(t *testing.T, what string, got *broker.KVValue, data string) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = absent, want %q", what, data)
		return
	}
	sameBytes(t, what, got.Data, []byte(data))
}

// expiresNear checks an expiry set to ttl from a moment after before.
func expiresNear(t *testing.T, what string, got, before time.Time, ttl time.Duration) {
	t.Helper()
	if got.Before(before.Add(ttl-time.Minute)) || got.After(time.Now().Add(ttl)) {
		t.Errorf("%s = %v, want about %v", what, got, before.Add(ttl))
	}
}

// incrBySwap adds one to a JSON integer the way the KV domain does: read,
// compute, swap if unchanged, again if not.
func incrBySwap(t *testing.T, s broker.Store, key string) error {
	for {
		e := broker.KVSwapEntry{Key: key, If: broker.KVIfAbsent, Op: broker.KVPut, Value: broker.KVValue{Data: []byte("1")}}
		cur, err := s.KVGet(t.Context(), key)
		if err == nil {
			n, err := strconv.Atoi(string(cur.Data))
			if err != nil {
				return err
			}
			e.If, e.Equal, e.Value.Data = broker.KVIfEqual, cur, []byte(strconv.Itoa(n+1))
		}
		res, err := s.KVSwap(t.Context(), broker.KVSwapParams{Entries: []broker.KVSwapEntry{e}})
		if err != nil || res.Applied {
			return err
		}
	}
}
