package kv_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/buntstore"
	"github.com/tabreduce/tabreduce/server/kv"
)

func newSpace(t *testing.T) *kv.Space {
	t.Helper()
	st, err := buntstore.Open(t.TempDir(), buntstore.Options{Fsync: buntstore.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return kv.New(st)
}

func set(t *testing.T, s *kv.Space, key string, v kv.Value) {
	t.Helper()
	res, err := s.Set(t.Context(), kv.SetParams{Entries: []kv.Entry{{Key: key, Value: v}}})
	if err != nil || !res.Applied {
		t.Fatalf("Set %s: applied %v, error %v", key, res.Applied, err)
	}
}

func get(t *testing.T, s *kv.Space, key string) kv.Item {
	t.Helper()
	it, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return it
}

func sameValue(t *testing.T, what string, got, want kv.Value) {
	t.Helper()
	if !kv.Equal(got, want) {
		t.Errorf("%s = %s (%s), want %s (%s)", what, kv.AppendJSON(nil, got), got.Kind(), kv.AppendJSON(nil, want), want.Kind())
	}
}

func TestSetConditions(t *testing.T) {
	s := newSpace(t)
	ctx := t.Context()
	one := []kv.Entry{{Key: "k", Value: kv.IntValue(1)}}
	res, err := s.Set(ctx, kv.SetParams{Entries: one, If: kv.IfPresent})
	if err != nil || res.Applied {
		t.Fatalf("Set XX of a missing key: applied %v, error %v", res.Applied, err)
	}
	if res, _ = s.Set(ctx, kv.SetParams{Entries: one, If: kv.IfAbsent}); !res.Applied {
		t.Fatal("Set NX of a missing key was not applied")
	}
	two := []kv.Entry{{Key: "k", Value: kv.TextValue("two")}, {Key: "other", Value: kv.NullValue()}}
	if res, _ = s.Set(ctx, kv.SetParams{Entries: two, If: kv.IfAbsent}); res.Applied {
		t.Fatal("Set NX of two keys, one present, was applied")
	}
	if _, err := s.Get(ctx, "other"); !errors.Is(err, broker.ErrKeyNotFound) {
		t.Errorf("a refused Set NX wrote another key: %v", err)
	}
	res, err = s.Set(ctx, kv.SetParams{Entries: two[:1], TTL: time.Hour, Prev: true})
	if err != nil || !res.Applied || res.Prev[0] == nil {
		t.Fatalf("Set: applied %v, prev %v, error %v", res.Applied, res.Prev, err)
	}
	sameValue(t, "Prev", res.Prev[0].Value, kv.IntValue(1))
	it := get(t, s, "k")
	sameValue(t, "Get", it.Value, kv.TextValue("two"))
	if time.Until(it.Expires) < 59*time.Minute {
		t.Errorf("Expires = %v, want an hour from now", it.Expires)
	}
	if _, err := s.Set(ctx, kv.SetParams{Entries: one, TTL: time.Second, KeepTTL: true}); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Set with TTL and KeepTTL: error = %v, want ErrInvalid", err)
	}
	if _, err := s.Set(ctx, kv.SetParams{Entries: one, TTL: -time.Second}); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Set with a negative TTL: error = %v, want ErrInvalid", err)
	}
}

func TestKeysAreChecked(t *testing.T) {
	s := newSpace(t)
	for _, k := range []string{"", strings.Repeat("k", kv.MaxKey+1), "\xff"} {
		if _, err := s.Get(t.Context(), k); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("Get %q: error = %v, want ErrInvalid", k, err)
		}
		if _, err := s.IncrBy(t.Context(), k, 1); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("IncrBy %q: error = %v, want ErrInvalid", k, err)
		}
	}
	if _, err := s.Delete(t.Context(), make([]string, kv.MaxKeys+1)); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Delete of too many keys: error = %v, want ErrInvalid", err)
	}
}

func TestIncrBy(t *testing.T) {
	s := newSpace(t)
	ctx := t.Context()
	set(t, s, "text", kv.TextValue("10"))
	set(t, s, "bytes", kv.BytesValue([]byte("-3")))
	set(t, s, "float", kv.FloatValue(1.5))
	set(t, s, "max", kv.IntValue(1<<63-1))
	cases := []struct {
		key   string
		delta int64
		want  kv.Value
		err   error
	}{
		{"missing", 5, kv.IntValue(5), nil},
		{"missing", -7, kv.IntValue(-2), nil},
		{"text", 1, kv.IntValue(11), nil},
		{"bytes", 3, kv.IntValue(0), nil},
		{"float", 1, kv.FloatValue(2.5), nil},
		{"max", 1, kv.Value{}, kv.ErrOverflow},
		{"max", -1, kv.IntValue(1<<63 - 2), nil},
	}
	for _, c := range cases {
		got, err := s.IncrBy(ctx, c.key, c.delta)
		if !errors.Is(err, c.err) {
			t.Errorf("IncrBy %s %d: error = %v, want %v", c.key, c.delta, err, c.err)
			continue
		}
		if c.err == nil {
			sameValue(t, "IncrBy "+c.key, got, c.want)
			sameValue(t, "Get "+c.key, get(t, s, c.key).Value, c.want)
		}
	}
	for v, want := range map[string]error{"01": kv.ErrNotInteger, " 1": kv.ErrNotInteger, "+1": kv.ErrNotInteger, "1.5": kv.ErrNotInteger, "x": kv.ErrNotInteger} {
		set(t, s, "bad", kv.TextValue(v))
		if _, err := s.IncrBy(ctx, "bad", 1); !errors.Is(err, want) {
			t.Errorf("IncrBy of %q: error = %v, want %v", v, err, want)
		}
	}
	for _, v := range []kv.Value{kv.NullValue(), kv.BoolValue(true), kv.ArrayValue(nil), kv.DictValue(nil), kv.SetValue(nil)} {
		set(t, s, "bad", v)
		if _, err := s.IncrBy(ctx, "bad", 1); !errors.Is(err, kv.ErrWrongType) {
			t.Errorf("IncrBy of %s: error = %v, want ErrWrongType", v.Kind(), err)
		}
	}
}

func TestIncrKeepsTTL(t *testing.T) {
	s := newSpace(t)
	if _, err := s.Set(t.Context(), kv.SetParams{Entries: []kv.Entry{{Key: "n", Value: kv.IntValue(1)}}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IncrBy(t.Context(), "n", 1); err != nil {
		t.Fatal(err)
	}
	if it := get(t, s, "n"); time.Until(it.Expires) < 59*time.Minute {
		t.Errorf("Expires after IncrBy = %v, want kept at an hour from now", it.Expires)
	}
}

// Concurrent increments lose nothing: each is one atomic step.
func TestIncrByAtOnce(t *testing.T) {
	s := newSpace(t)
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := s.IncrBy(t.Context(), "n", 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	sameValue(t, "counter", get(t, s, "n").Value, kv.IntValue(workers*each))
}

func TestAppend(t *testing.T) {
	s := newSpace(t)
	ctx := t.Context()
	set(t, s, "text", kv.TextValue("ab"))
	set(t, s, "bytes", kv.BytesValue([]byte{0xff}))
	set(t, s, "num", kv.IntValue(5))
	set(t, s, "list", kv.ArrayValue([]kv.Value{kv.IntValue(1)}))
	set(t, s, "dict", kv.DictValue(nil))
	cases := []struct {
		key  string
		v    kv.Value
		n    int
		want kv.Value
	}{
		{"new", kv.BytesValue([]byte("x")), 1, kv.BytesValue([]byte("x"))},
		{"text", kv.BytesValue([]byte("cd")), 4, kv.TextValue("abcd")},
		{"text", kv.BytesValue([]byte{0xfe}), 5, kv.BytesValue([]byte("abcd\xfe"))},
		{"bytes", kv.TextValue("é"), 3, kv.BytesValue([]byte("\xffé"))},
		{"num", kv.BytesValue([]byte("0")), 2, kv.TextValue("50")},
		{"list", kv.TextValue("two"), 2, kv.ArrayValue([]kv.Value{kv.IntValue(1), kv.TextValue("two")})},
		{"list", kv.ArrayValue([]kv.Value{kv.NullValue(), kv.IntValue(3)}), 4,
			kv.ArrayValue([]kv.Value{kv.IntValue(1), kv.TextValue("two"), kv.NullValue(), kv.IntValue(3)})},
	}
	for _, c := range cases {
		n, err := s.Append(ctx, c.key, c.v)
		if err != nil {
			t.Errorf("Append %s: %v", c.key, err)
			continue
		}
		if n != c.n {
			t.Errorf("Append %s = %d, want %d", c.key, n, c.n)
		}
		sameValue(t, "after Append "+c.key, get(t, s, c.key).Value, c.want)
	}
	if _, err := s.Append(ctx, "dict", kv.TextValue("x")); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("Append to a dict: error = %v, want ErrWrongType", err)
	}
	if _, err := s.Append(ctx, "text", kv.ArrayValue(nil)); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("Append of an array to text: error = %v, want ErrWrongType", err)
	}
	if _, err := s.Append(ctx, "text", kv.NullValue()); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Append of null: error = %v, want ErrInvalid", err)
	}
}

func TestDeleteExistsExpire(t *testing.T) {
	s := newSpace(t)
	ctx := t.Context()
	set(t, s, "a", kv.IntValue(1))
	set(t, s, "b", kv.IntValue(2))
	if n, err := s.Exists(ctx, []string{"a", "a", "b", "c"}); err != nil || n != 3 {
		t.Errorf("Exists a a b c = %d, %v; want 3", n, err)
	}
	if ok, err := s.Expire(ctx, "a", time.Hour); err != nil || !ok {
		t.Errorf("Expire a = %v, %v; want true", ok, err)
	}
	if it := get(t, s, "a"); time.Until(it.Expires) < 59*time.Minute {
		t.Errorf("Expires after Expire = %v", it.Expires)
	}
	if ok, err := s.Expire(ctx, "c", time.Hour); err != nil || ok {
		t.Errorf("Expire of a missing key = %v, %v; want false", ok, err)
	}
	if ok, err := s.Expire(ctx, "b", 0); err != nil || !ok {
		t.Errorf("Expire b 0 = %v, %v; want true", ok, err)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, broker.ErrKeyNotFound) {
		t.Errorf("Get after Expire 0: error = %v, want ErrKeyNotFound", err)
	}
	set(t, s, "b", kv.IntValue(2))
	if n, err := s.Delete(ctx, []string{"a", "a", "b", "c"}); err != nil || n != 2 {
		t.Errorf("Delete a a b c = %d, %v; want 2", n, err)
	}
	if n, _ := s.Exists(ctx, []string{"a", "b"}); n != 0 {
		t.Errorf("Exists after Delete = %d", n)
	}
}
