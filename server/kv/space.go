package kv

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Limits of the key/value space.
const (
	MaxKey  = 512                         // bytes per key
	MaxKeys = 1000                        // keys per multi-key call
	MaxTTL  = 1_000_000_000 * time.Second // longest time to live
	// maxUpdates bounds how often one read-modify-write is tried again
	// because another writer changed the key in between.
	maxUpdates = 1000
)

// Errors of the operations, beside broker.ErrKeyNotFound. All but
// ErrContended wrap broker.ErrInvalid: they are the caller's to fix.
var (
	// ErrWrongType means the operation does not apply to the kind of value
	// the key holds (an increment of a dict, an append to a set).
	ErrWrongType = fmt.Errorf("%w: operation against a key holding the wrong kind of value", broker.ErrInvalid)
	// ErrNotInteger means an increment found a value that is not an integer.
	ErrNotInteger = fmt.Errorf("%w: value is not an integer or out of range", broker.ErrInvalid)
	// ErrOverflow means an increment would leave the 64-bit range.
	ErrOverflow = fmt.Errorf("%w: increment or decrement would overflow", broker.ErrInvalid)
	// ErrContended means a key changed under every one of maxUpdates tries
	// of a read-modify-write.
	ErrContended = errors.New("key changed too often to update")
)

// CheckKey returns an error wrapping broker.ErrInvalid unless k is a key
// callers may use: 1 to MaxKey bytes of UTF-8.
func CheckKey(k string) error {
	if k == "" || len(k) > MaxKey || !utf8.ValidString(k) {
		return fmt.Errorf("%w: key must be 1-%d bytes of UTF-8", broker.ErrInvalid, MaxKey)
	}
	return nil
}

// Store is what the key/value space needs of the store.
type Store interface {
	KVGet(ctx context.Context, key string) (broker.KVValue, error)
	KVMGet(ctx context.Context, keys []string) ([]*broker.KVValue, error)
	KVSet(ctx context.Context, entries []broker.KVEntry) error
	KVSwap(ctx context.Context, p broker.KVSwapParams) (broker.KVSwapResult, error)
}

// Space is the public key/value space: typed values over the store, with
// the key rule and limits enforced on every path.
type Space struct {
	store Store
}

// New returns the space over store.
func New(store Store) *Space { return &Space{store: store} }

// Item is a value read back, with when it expires (zero: never).
type Item struct {
	Value   Value
	Expires time.Time
}

// Entry is a key and a value to set.
type Entry struct {
	Key   string
	Value Value
}

func decodeItem(s *broker.KVValue) (*Item, error) {
	if s == nil {
		return nil, nil
	}
	v, err := Decode(*s)
	if err != nil {
		return nil, err
	}
	return &Item{Value: v, Expires: s.Expires}, nil
}

// Get returns a key's value, or broker.ErrKeyNotFound.
func (s *Space) Get(ctx context.Context, key string) (Item, error) {
	if err := CheckKey(key); err != nil {
		return Item{}, err
	}
	raw, err := s.store.KVGet(ctx, key)
	if err != nil {
		return Item{}, err
	}
	v, err := Decode(raw)
	if err != nil {
		return Item{}, fmt.Errorf("key %q: %w", key, err)
	}
	return Item{Value: v, Expires: raw.Expires}, nil
}

// MGet returns the values of keys in order, nil for each missing one.
func (s *Space) MGet(ctx context.Context, keys []string) ([]*Item, error) {
	if err := checkKeys(keys); err != nil {
		return nil, err
	}
	raws, err := s.store.KVMGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]*Item, len(raws))
	for i, r := range raws {
		if out[i], err = decodeItem(r); err != nil {
			return nil, fmt.Errorf("key %q: %w", keys[i], err)
		}
	}
	return out, nil
}

func checkKeys(keys []string) error {
	if len(keys) == 0 || len(keys) > MaxKeys {
		return fmt.Errorf("%w: %d keys, want 1-%d", broker.ErrInvalid, len(keys), MaxKeys)
	}
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return err
		}
	}
	return nil
}

// Cond is a condition on the keys of a Set.
type Cond uint8

// Conditions of Set.
const (
	Always    Cond = iota
	IfAbsent       // only if none of the keys exists (SET NX, SETNX)
	IfPresent      // only if every key exists (SET XX)
)

// SetParams are the arguments of Set.
type SetParams struct {
	Entries []Entry
	If      Cond
	TTL     time.Duration // zero: never expires
	KeepTTL bool          // keep each key's expiry
	Prev    bool          // return the values before (SET ... GET)
}

// SetResult is what Set did: whether it set the keys, and, if asked, their
// values before.
type SetResult struct {
	Applied bool
	Prev    []*Item
}

// Set stores every entry at once, if the condition holds for all of them.
func (s *Space) Set(ctx context.Context, p SetParams) (SetResult, error) {
	if len(p.Entries) == 0 || len(p.Entries) > MaxKeys {
		return SetResult{}, fmt.Errorf("%w: %d keys, want 1-%d", broker.ErrInvalid, len(p.Entries), MaxKeys)
	}
	if err := checkTTL(p.TTL); err != nil {
		return SetResult{}, err
	}
	if p.KeepTTL && p.TTL != 0 {
		return SetResult{}, fmt.Errorf("%w: a TTL and keeping the TTL exclude each other", broker.ErrInvalid)
	}
	for _, e := range p.Entries {
		if err := CheckKey(e.Key); err != nil {
			return SetResult{}, err
		}
	}
	if p.If == Always && !p.KeepTTL && !p.Prev {
		return SetResult{Applied: true}, s.put(ctx, p)
	}
	cond := map[Cond]broker.KVCond{Always: broker.KVAlways, IfAbsent: broker.KVIfAbsent, IfPresent: broker.KVIfPresent}[p.If]
	entries := make([]broker.KVSwapEntry, len(p.Entries))
	for i, e := range p.Entries {
		entries[i] = broker.KVSwapEntry{Key: e.Key, If: cond, Op: broker.KVPut, Value: Encode(e.Value), TTL: p.TTL, KeepTTL: p.KeepTTL}
	}
	res, err := s.store.KVSwap(ctx, broker.KVSwapParams{Entries: entries})
	if err != nil {
		return SetResult{}, err
	}
	out := SetResult{Applied: res.Applied}
	if !p.Prev {
		return out, nil
	}
	out.Prev = make([]*Item, len(res.Prev))
	for i, r := range res.Prev {
		if out.Prev[i], err = decodeItem(r); err != nil {
			return SetResult{}, fmt.Errorf("key %q: %w", entries[i].Key, err)
		}
	}
	return out, nil
}

// put stores entries unconditionally, which needs no read of what was there.
func (s *Space) put(ctx context.Context, p SetParams) error {
	entries := make([]broker.KVEntry, len(p.Entries))
	for i, e := range p.Entries {
		entries[i] = broker.KVEntry{Key: e.Key, Value: Encode(e.Value), TTL: p.TTL}
	}
	return s.store.KVSet(ctx, entries)
}

func checkTTL(ttl time.Duration) error {
	if ttl < 0 || ttl > MaxTTL {
		return fmt.Errorf("%w: ttl %s is outside 0..%s", broker.ErrInvalid, ttl, MaxTTL)
	}
	return nil
}

// Delete deletes keys (each once, however often it is named) at once and
// returns how many existed.
func (s *Space) Delete(ctx context.Context, keys []string) (int, error) {
	if err := checkKeys(keys); err != nil {
		return 0, err
	}
	seen := make(map[string]bool, len(keys))
	var entries []broker.KVSwapEntry
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			entries = append(entries, broker.KVSwapEntry{Key: k, Op: broker.KVRemove})
		}
	}
	res, err := s.store.KVSwap(ctx, broker.KVSwapParams{Entries: entries})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range res.Prev {
		if p != nil {
			n++
		}
	}
	return n, nil
}

// Exists returns how many of keys exist, counting a key named twice twice.
func (s *Space) Exists(ctx context.Context, keys []string) (int, error) {
	if err := checkKeys(keys); err != nil {
		return 0, err
	}
	raws, err := s.store.KVMGet(ctx, keys)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range raws {
		if r != nil {
			n++
		}
	}
	return n, nil
}

// Expire makes a key expire after ttl (zero or less: at once, deleting
// it). It reports false if the key does not exist.
func (s *Space) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	e := broker.KVSwapEntry{Key: key, If: broker.KVIfPresent, Op: broker.KVExpire, TTL: ttl}
	if ttl <= 0 {
		e.Op, e.TTL = broker.KVRemove, 0
	} else if err := checkTTL(ttl); err != nil {
		return false, err
	}
	res, err := s.store.KVSwap(ctx, broker.KVSwapParams{Entries: []broker.KVSwapEntry{e}})
	return res.Applied, err
}

// update replaces a key's value with fn of it (nil: absent), keeping its
// expiry, as one atomic step: if another writer changes the key in
// between, fn runs again on the new value.
func (s *Space) update(ctx context.Context, key string, fn func(cur *Value) (Value, error)) (Value, error) {
	if err := CheckKey(key); err != nil {
		return Value{}, err
	}
	var cur *broker.KVValue
	raw, err := s.store.KVGet(ctx, key)
	switch {
	case err == nil:
		cur = &raw
	case !errors.Is(err, broker.ErrKeyNotFound):
		return Value{}, err
	}
	for range maxUpdates {
		var curV *Value
		if cur != nil {
			v, err := Decode(*cur)
			if err != nil {
				return Value{}, fmt.Errorf("key %q: %w", key, err)
			}
			curV = &v
		}
		next, err := fn(curV)
		if err != nil {
			return Value{}, err
		}
		e := broker.KVSwapEntry{Key: key, If: broker.KVIfAbsent, Op: broker.KVPut, Value: Encode(next), KeepTTL: true}
		if cur != nil {
			e.If, e.Equal = broker.KVIfEqual, *cur
		}
		res, err := s.store.KVSwap(ctx, broker.KVSwapParams{Entries: []broker.KVSwapEntry{e}})
		if err != nil {
			return Value{}, err
		}
		if res.Applied {
			return next, nil
		}
		cur = res.Prev[0]
	}
	return Value{}, fmt.Errorf("key %q: %w", key, ErrContended)
}
