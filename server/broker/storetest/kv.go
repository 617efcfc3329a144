package storetest

import (
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// kvCases pin down the key/value methods.
func kvCases() []storeCase {
	cases := []storeCase{
		{"GetMissing", func(t *testing.T, s broker.Store) {
			_, err := s.KVGet(t.Context(), "nosuch")
			isErr(t, "KVGet nosuch", err, broker.ErrKeyNotFound)
		}},
		{"MGetInOrderWithNils", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("a", "1", false), kv("c", "3", true))
			got, err := s.KVMGet(t.Context(), []string{"a", "b", "c", "b", "a"})
			must(t, "KVMGet", err)
			want := []*broker.KVValue{{Data: []byte("1")}, nil, {Data: []byte("3"), Raw: true}, nil, {Data: []byte("1")}}
			if len(got) != len(want) {
				t.Fatalf("KVMGet of 5 keys returned %d values, want 5", len(got))
			}
			for i, w := range want {
				switch {
				case w == nil && got[i] != nil:
					t.Errorf("KVMGet value %d = %q, want nil", i, got[i].Data)
				case w != nil && got[i] == nil:
					t.Errorf("KVMGet value %d = nil, want %q", i, w.Data)
				case w != nil:
					sameKV(t, "KVMGet value", *got[i], *w)
				}
			}
		}},
		{"SetSeveral", func(t *testing.T, s broker.Store) {
			entries := []broker.KVEntry{kv("x", `"ex"`, false), kv("y", "why", true), kv("z", "[1,2]", false)}
			kvSet(t, s, entries...)
			for _, e := range entries {
				sameKV(t, "KVGet "+e.Key, kvGet(t, s, e.Key), e.Value)
			}
		}},
		{"Overwrite", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("k", "1", false))
			kvSet(t, s, kv("k", "two", true))
			sameKV(t, "KVGet after overwrite", kvGet(t, s, "k"), broker.KVValue{Data: []byte("two"), Raw: true})
		}},
		{"Delete", func(t *testing.T, s broker.Store) {
			kvSet(t, s, kv("k", "1", false), kv("keep", "2", false))
			must(t, "KVDelete", s.KVDelete(t.Context(), "k"))
			_, err := s.KVGet(t.Context(), "k")
			isErr(t, "KVGet after delete", err, broker.ErrKeyNotFound)
			isErr(t, "KVDelete twice", s.KVDelete(t.Context(), "k"), broker.ErrKeyNotFound)
			isErr(t, "KVDelete of a missing key", s.KVDelete(t.Context(), "nosuch"), broker.ErrKeyNotFound)
			sameKV(t, "KVGet of the key kept", kvGet(t, s, "keep"), broker.KVValue{Data: []byte("2")})
		}},
		// KV TTLs expire on the implementation's real clock, so only the
		// loose half is checked: a key with an hour to live is there.
		{"TTLHourIsPresent", func(t *testing.T, s broker.Store) {
			before := time.Now()
			kvSet(t, s, broker.KVEntry{Key: "k", Value: broker.KVValue{Data: []byte("v"), Raw: true}, TTL: time.Hour})
			got := kvGet(t, s, "k")
			sameBytes(t, "KVGet of a key with TTL", got.Data, []byte("v"))
			if !got.Expires.IsZero() && (!got.Expires.After(before) || got.Expires.After(time.Now().Add(time.Hour))) {
				t.Errorf("Expires of a key set with TTL 1h = %v, want zero or within an hour of %v", got.Expires, before)
			}
		}},
		// Key/values and queues share no names: a key spelled like a queue,
		// a message key or a dead-letter queue touches neither.
		{"SeparateFromQueues", func(t *testing.T, s broker.Store) {
			push(t, s, "q", base, "a", "b")
			keys := []string{"q", "q:1", "q:2", "q.dead", "queue:q", "q:meta"}
			for _, k := range keys {
				kvSet(t, s, kv(k, "kv "+k, true))
			}
			push(t, s, "q", base, "c")
			for _, k := range keys {
				sameKV(t, "KVGet "+k, kvGet(t, s, k), broker.KVValue{Data: []byte("kv " + k), Raw: true})
			}
			sameSlice(t, "queue names", names(list(t, s)), []string{"q"})
			sameSlice(t, "taken from q", drain(t, s, "q", base), []string{"a", "b", "c"})
		}},
	}
	for _, v := range sampleValues {
		for _, raw := range []bool{false, true} {
			name := "Value" + v.name
			if raw {
				name += "Raw"
			}
			cases = append(cases, storeCase{name, func(t *testing.T, s broker.Store) {
				want := broker.KVValue{Data: v.value, Raw: raw}
				kvSet(t, s, broker.KVEntry{Key: "k", Value: want})
				sameKV(t, "KVGet", kvGet(t, s, "k"), want)
			}})
		}
	}
	return cases
}

// kv is an entry without TTL.
func kv(key, data string, raw bool) broker.KVEntry {
	return broker.KVEntry{Key: key, Value: broker.KVValue{Data: []byte(data), Raw: raw}}
}

func kvSet(t *testing.T, s broker.Store, entries ...broker.KVEntry) {
	t.Helper()
	must(t, "KVSet", s.KVSet(t.Context(), entries))
}

func kvGet(t *testing.T, s broker.Store, key string) broker.KVValue {
	t.Helper()
	v, err := s.KVGet(t.Context(), key)
	must(t, "KVGet "+key, err)
	return v
}

// sameKV compares data and the Raw flag (Expires is the clock's business).
func sameKV(t *testing.T, what string, got, want broker.KVValue) {
	t.Helper()
	sameBytes(t, what+" Data", got.Data, want.Data)
	equal(t, what+" Raw", got.Raw, want.Raw)
}
