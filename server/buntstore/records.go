package buntstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Engine records live under "e:", apart from the public key/values under
// "k:": no key/value route reaches them, and FlushPublic leaves them.

// errLimit stops a scan that reached its limit.
var errLimit = errors.New("limit reached")

// RecordGet returns an engine record's value.
func (s *Store) RecordGet(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		v, err := tx.Get(recordPrefix + key)
		if errors.Is(err, buntdb.ErrNotFound) {
			return broker.ErrRecordNotFound
		}
		out = []byte(v)
		return err
	})
	return out, err
}

// RecordScan returns records with a prefix after a key, in key order.
func (s *Store) RecordScan(ctx context.Context, p broker.RecordScanParams) ([]broker.Record, error) {
	var out []broker.Record
	lo := recordPrefix + p.Prefix
	if p.After != "" && p.After >= p.Prefix {
		lo = recordPrefix + p.After + "\x00" // the first key above After
	}
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		out = out[:0]
		return tx.AscendGreaterOrEqual("", lo, func(k, v string) bool {
			key := k[len(recordPrefix):]
			if !strings.HasPrefix(k, recordPrefix) || !strings.HasPrefix(key, p.Prefix) {
				return false
			}
			out = append(out, broker.Record{Key: key, Value: []byte(v)})
			return p.Limit <= 0 || len(out) < p.Limit
		})
	})
	if err != nil {
		return nil, fmt.Errorf("scan records %q: %w", p.Prefix, err)
	}
	return out, nil
}

// RecordDeletePrefix deletes every record whose key starts with prefix.
func (s *Store) RecordDeletePrefix(ctx context.Context, prefix string) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		var err error
		n, err = deletePrefixTx(tx, recordPrefix+prefix)
		return err
	})
	return n, err
}

// deletePrefixTx deletes every key that starts with prefix.
func deletePrefixTx(tx *buntdb.Tx, prefix string) (int, error) {
	var keys []string
	err := tx.AscendGreaterOrEqual("", prefix, func(k, _ string) bool {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		keys = append(keys, k)
		return true
	})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if _, err := tx.Delete(k); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
			return 0, err
		}
	}
	return len(keys), nil
}

func recordSetTx(tx *buntdb.Tx, recs []broker.Record) error {
	for _, r := range recs {
		if _, _, err := tx.Set(recordPrefix+r.Key, string(r.Value), nil); err != nil {
			return fmt.Errorf("record %s: %w", r.Key, err)
		}
	}
	return nil
}
