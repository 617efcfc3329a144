package buntstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/buntdb"
)

// checkLayout makes sure the file is in this package's key layout: a new
// file is marked, a file of layout 1 (queue names were [A-Za-z0-9._-] and
// ':' separated the parts of a key) is rewritten in one transaction, a file
// of layout 2 (one deadline index entry per leased message, dropped at its
// ack) or 3 (one f: record per leased message, one deadline index entry per
// leased batch) is marked (layout 4 keeps leases of both as they are, and
// adds leased batches of one record), and a layout this package does not
// know is refused. A binary that knows layout 3 at most refuses a file of
// layout 4: it would miss its leased batches.
func (s *Store) checkLayout() error {
	return s.db.Update(func(tx *buntdb.Tx) error {
		v, err := tx.Get(layoutKey)
		switch {
		case err == nil && v == layoutVersion:
			return nil
		case err == nil && (v == layoutV2 || v == layoutV3):
			s.log.Info("upgraded the store's key layout", "layout", layoutVersion, "from", v)
			_, _, err = tx.Set(layoutKey, layoutVersion, nil)
			return err
		case err == nil:
			return fmt.Errorf("the store's key layout is %q; this version reads layout %s", truncate(v, 16), layoutVersion)
		case !errors.Is(err, buntdb.ErrNotFound):
			return err
		}
		n, err := migrateV1(tx)
		if err != nil {
			return fmt.Errorf("upgrade the key layout: %w", err)
		}
		if n > 0 {
			s.log.Info("upgraded the store's key layout", "layout", layoutVersion, "keys", n)
		}
		_, _, err = tx.Set(layoutKey, layoutVersion, nil)
		return err
	})
}

// migrateV1 rewrites the message and index keys of layout 1 and returns how
// many it rewrote. Queue state and key/value keys are the same in both.
func migrateV1(tx *buntdb.Tx) (int, error) {
	type kv struct{ k, v string }
	var old []kv
	for _, prefix := range []string{readyPrefix, flightPrefix, deadlinePrefix, ttlPrefix} {
		err := tx.AscendRange("", prefix, prefixEnd(prefix), func(k, v string) bool {
			old = append(old, kv{k, v})
			return true
		})
		if err != nil {
			return 0, err
		}
	}
	for _, e := range old {
		nk, err := v1Key(e.k)
		if err != nil {
			return 0, err
		}
		if _, err := tx.Delete(e.k); err != nil {
			return 0, err
		}
		if _, _, err := tx.Set(nk, e.v, nil); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}

// v1Key translates one layout-1 key: r:{q}:{id} and f:{q}:{id}, or
// d:{t}:{q}:{id} and x:{t}:{q}:{id}, every number 16 hex digits.
func v1Key(k string) (string, error) {
	bad := fmt.Errorf("key %q is not of layout 1", truncate(k, 60))
	prefix, rest := k[:2], k[2:]
	t := ""
	if prefix == deadlinePrefix || prefix == ttlPrefix {
		if len(rest) < 17 || rest[16] != ':' {
			return "", bad
		}
		t, rest = rest[:16], rest[17:]
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || len(rest)-i-1 != 16 {
		return "", bad
	}
	if _, err := strconv.ParseUint(rest[i+1:], 16, 64); err != nil {
		return "", bad
	}
	return prefix + t + rest[:i] + nameEnd + rest[i+1:], nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
