package buntstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// A kv value is stored as one type byte ('j' JSON, 'b' raw bytes) and the data.
func encodeKV(v broker.KVValue) string {
	t := "j"
	if v.Raw {
		t = "b"
	}
	return t + string(v.Data)
}

func decodeKV(tx *buntdb.Tx, key, s string) (broker.KVValue, error) {
	if s == "" || (s[0] != 'j' && s[0] != 'b') {
		return broker.KVValue{}, fmt.Errorf("kv %s: %w", key, errCorrupt)
	}
	v := broker.KVValue{Data: []byte(s[1:]), Raw: s[0] == 'b'}
	if ttl, err := tx.TTL(kvPrefix + key); err == nil && ttl > 0 {
		v.Expires = time.Now().Add(ttl).UTC()
	}
	return v, nil
}

func kvGet(tx *buntdb.Tx, key string) (*broker.KVValue, error) {
	s, err := tx.Get(kvPrefix + key)
	if errors.Is(err, buntdb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := decodeKV(tx, key, s)
	return &v, err
}

// KVGet returns a key's value.
func (s *Store) KVGet(ctx context.Context, key string) (broker.KVValue, error) {
	var out broker.KVValue
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		v, err := kvGet(tx, key)
		if err != nil {
			return err
		}
		if v == nil {
			return broker.ErrKeyNotFound
		}
		out = *v
		return nil
	})
	return out, err
}

// KVMGet returns the values of keys, nil for missing ones.
func (s *Store) KVMGet(ctx context.Context, keys []string) ([]*broker.KVValue, error) {
	out := make([]*broker.KVValue, len(keys))
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		for i, k := range keys {
			v, err := kvGet(tx, k)
			if err != nil {
				return err
			}
			out[i] = v
		}
		return nil
	})
	return out, err
}

// KVSet stores every entry in one transaction.
func (s *Store) KVSet(ctx context.Context, entries []broker.KVEntry) error {
	return s.update(ctx, func(tx *buntdb.Tx) error { return kvSetTx(tx, entries) })
}

func kvSetTx(tx *buntdb.Tx, entries []broker.KVEntry) error {
	for _, e := range entries {
		var opts *buntdb.SetOptions
		if e.TTL > 0 {
			opts = &buntdb.SetOptions{Expires: true, TTL: e.TTL}
		}
		if _, _, err := tx.Set(kvPrefix+e.Key, encodeKV(e.Value), opts); err != nil {
			return fmt.Errorf("kv set %s: %w", e.Key, err)
		}
	}
	return nil
}

// KVScan returns every entry whose key starts with prefix.
func (s *Store) KVScan(ctx context.Context, prefix string) ([]broker.KVEntry, error) {
	var out []broker.KVEntry
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		keys, vals, err := scan(tx, kvPrefix+prefix, kvPrefix+prefix+"\xff", 0)
		if err != nil {
			return err
		}
		for i, k := range keys {
			key := k[len(kvPrefix):]
			if !strings.HasPrefix(key, prefix) {
				continue
			}
			v, err := decodeKV(tx, key, vals[i])
			if err != nil {
				return err
			}
			out = append(out, broker.KVEntry{Key: key, Value: v})
		}
		return nil
	})
	return out, err
}

// KVDeletePrefix deletes every key that starts with prefix.
func (s *Store) KVDeletePrefix(ctx context.Context, prefix string) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		keys, _, err := scan(tx, kvPrefix+prefix, kvPrefix+prefix+"\xff", 0)
		if err != nil {
			return err
		}
		n = 0
		for _, k := range keys {
			if !strings.HasPrefix(k, kvPrefix+prefix) {
				continue
			}
			if _, err := tx.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// KVDelete deletes a key.
func (s *Store) KVDelete(ctx context.Context, key string) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		_, err := tx.Delete(kvPrefix + key)
		if errors.Is(err, buntdb.ErrNotFound) {
			return broker.ErrKeyNotFound
		}
		return err
	})
}
