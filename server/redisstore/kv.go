package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// The key/value space is one slot ({kv}): a KVSet or KVSwap of many keys
// is one script, as the contract wants. Values are a type byte ('j' JSON,
// 'b' raw bytes) and the data; TTLs run on Redis's clock.

func encodeKV(v broker.KVValue) []byte {
	t := byte('j')
	if v.Raw {
		t = 'b'
	}
	return append([]byte{t}, v.Data...)
}

func decodeKV(b []byte) (broker.KVValue, error) {
	if len(b) == 0 || (b[0] != 'j' && b[0] != 'b') {
		return broker.KVValue{}, corrupt("key/value", b)
	}
	return broker.KVValue{Data: bytes.Clone(b[1:]), Raw: b[0] == 'b'}, nil
}

// decodeKVReply reads {} (absent) or {value, expiry µs}.
func decodeKVReply(v any) (*broker.KVValue, error) {
	a, err := asSlice(v, 0, "key/value reply")
	if err != nil || len(a) == 0 {
		return nil, err
	}
	if len(a) != 2 {
		return nil, corrupt("key/value reply", v)
	}
	data, err := asString(a[0], "key/value")
	if err != nil {
		return nil, err
	}
	exp, err := asCount(a[1], "key/value expiry")
	if err != nil {
		return nil, err
	}
	kv, err := decodeKV([]byte(data))
	if err != nil {
		return nil, err
	}
	if exp > 0 {
		kv.Expires = time.UnixMicro(exp).UTC()
	}
	return &kv, nil
}

// KVGet returns a key's value.
func (s *Store) KVGet(ctx context.Context, key string) (broker.KVValue, error) {
	vs, err := s.KVMGet(ctx, []string{key})
	if err != nil {
		return broker.KVValue{}, err
	}
	if vs[0] == nil {
		return broker.KVValue{}, broker.ErrKeyNotFound
	}
	return *vs[0], nil
}

// KVMGet returns the values of keys, nil for missing ones, as of one
// moment.
func (s *Store) KVMGet(ctx context.Context, keys []string) ([]*broker.KVValue, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := make([]*broker.KVValue, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	args := make([]any, 0, 1+len(keys))
	args = append(args, s.keys.kvValuePrefix())
	for _, k := range keys {
		args = append(args, k)
	}
	v, err := s.run(ctx, scriptKVGet, nowArgs{}, s.keys.kvIndex(), args...)
	if err != nil {
		return nil, fmt.Errorf("kv get: %w", err)
	}
	a, err := asSlice(v, len(keys), "kv get reply")
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if out[i], err = decodeKVReply(a[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// KVSet stores every entry in one script.
func (s *Store) KVSet(ctx context.Context, entries []broker.KVEntry) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	args := []any{s.keys.kvValuePrefix()}
	for _, e := range entries {
		args = append(args, e.Key, encodeKV(e.Value), ttlMicros(e.TTL))
	}
	if _, err := s.run(ctx, scriptKVSet, nowArgs{}, s.keys.kvIndex(), args...); err != nil {
		return fmt.Errorf("kv set: %w", err)
	}
	return nil
}

// KVDelete deletes a key.
func (s *Store) KVDelete(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	v, err := s.run(ctx, scriptKVDel, nowArgs{}, s.keys.kvIndex(), s.keys.kvValuePrefix(), key)
	if err != nil {
		return fmt.Errorf("kv delete %s: %w", key, err)
	}
	if n, _ := asInt(v, "kv delete reply"); n != 1 {
		return broker.ErrKeyNotFound
	}
	return nil
}

// KVScan returns every entry whose key starts with prefix, sorted by key.
func (s *Store) KVScan(ctx context.Context, prefix string) ([]broker.KVEntry, error) {
	out, _, err := s.kvScan(ctx, prefix, false, 0)
	return out, err
}

// KVDeletePrefix deletes every key that starts with prefix.
func (s *Store) KVDeletePrefix(ctx context.Context, prefix string) (int, error) {
	n := 0
	for {
		got, more, err := s.kvScan(ctx, prefix, true, scanBatch)
		n += len(got)
		if err != nil || !more {
			return n, err
		}
	}
}

// scanBatch is how many keys one deleting scan takes at a time.
const scanBatch = 1000

func (s *Store) kvScan(ctx context.Context, prefix string, del bool, limit int) ([]broker.KVEntry, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	lo, hi := lexRange(prefix)
	d := "0"
	if del {
		d = "1"
	}
	v, err := s.run(ctx, scriptKVScan, nowArgs{}, s.keys.kvIndex(), s.keys.kvValuePrefix(), lo, hi, d, limit)
	if err != nil {
		return nil, false, fmt.Errorf("kv scan %q: %w", prefix, err)
	}
	a, err := asSlice(v, 1, "kv scan reply")
	if err != nil || (len(a)-1)%3 != 0 {
		return nil, false, corrupt("kv scan reply", v)
	}
	more, _ := asInt(a[0], "kv scan reply")
	out := make([]broker.KVEntry, 0, (len(a)-1)/3)
	for i := 1; i < len(a); i += 3 {
		k, err := asString(a[i], "kv scan key")
		if err != nil {
			return nil, false, err
		}
		val, err := decodeKVReply([]any{a[i+1], a[i+2]})
		if err != nil {
			return nil, false, err
		}
		out = append(out, broker.KVEntry{Key: k, Value: *val})
	}
	return out, more == 1, nil
}

// lexRange is the ZRANGEBYLEX range of every member with prefix.
func lexRange(prefix string) (lo, hi string) {
	if prefix == "" {
		return "-", "+"
	}
	b := []byte(prefix)
	for len(b) > 0 && b[len(b)-1] == 0xff {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "[" + prefix, "+"
	}
	b[len(b)-1]++
	return "[" + prefix, "(" + string(b)
}

// KVSwap checks every entry's condition and, if all hold, applies every
// change, in one script.
func (s *Store) KVSwap(ctx context.Context, p broker.KVSwapParams) (broker.KVSwapResult, error) {
	if err := s.check(ctx); err != nil {
		return broker.KVSwapResult{}, err
	}
	res := broker.KVSwapResult{Prev: make([]*broker.KVValue, len(p.Entries))}
	if len(p.Entries) == 0 {
		res.Applied = true
		return res, nil
	}
	args := []any{s.keys.kvValuePrefix()}
	for _, e := range p.Entries {
		if e.If > broker.KVIfEqual || e.Op > broker.KVCheck {
			return broker.KVSwapResult{}, fmt.Errorf("%w: kv swap %s: condition %d, change %d", broker.ErrInvalid, e.Key, e.If, e.Op)
		}
		keep := "0"
		if e.KeepTTL {
			keep = "1"
		}
		args = append(args, e.Key, int(e.If), encodeKV(e.Equal), int(e.Op), encodeKV(e.Value), ttlMicros(e.TTL), keep)
	}
	v, err := s.run(ctx, scriptKVSwap, nowArgs{}, s.keys.kvIndex(), args...)
	if err != nil {
		return broker.KVSwapResult{}, fmt.Errorf("kv swap: %w", err)
	}
	a, err := asSlice(v, 1+len(p.Entries), "kv swap reply")
	if err != nil {
		return broker.KVSwapResult{}, err
	}
	applied, _ := asInt(a[0], "kv swap reply")
	res.Applied = applied == 1
	for i := range p.Entries {
		if res.Prev[i], err = decodeKVReply(a[1+i]); err != nil {
			return broker.KVSwapResult{}, err
		}
	}
	return res, nil
}
