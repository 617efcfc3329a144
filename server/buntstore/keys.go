package buntstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Key layout. Queue names never contain ':', so a prefix ends at the first
// ':' after it. Ids and times are fixed-width hex so keys sort numerically.
//
//	q:{queue}                         queue state (meta, JSON)
//	r:{queue}:{id}                    ready message (record)
//	f:{queue}:{id}                    in-flight message (record with lease)
//	d:{deadline}:{queue}:{id}         lease deadline index ("")
//	x:{expires}:{queue}:{id}          TTL index of ready messages ("")
//	k:{key}                           key/value entry
const (
	metaPrefix     = "q:"
	readyPrefix    = "r:"
	flightPrefix   = "f:"
	deadlinePrefix = "d:"
	ttlPrefix      = "x:"
	kvPrefix       = "k:"
)

func hex16(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

func metaKey(q string) string              { return metaPrefix + q }
func readyKey(q string, id uint64) string  { return readyPrefix + q + ":" + hex16(id) }
func flightKey(q string, id uint64) string { return flightPrefix + q + ":" + hex16(id) }

// queueRange returns the [lo, hi) key range of a per-queue prefix.
func queueRange(prefix, q string) (lo, hi string) {
	return prefix + q + ":", prefix + q + ";"
}

func timeKey(prefix string, at int64, q string, id uint64) string {
	return prefix + hex16(uint64(at)) + ":" + q + ":" + hex16(id)
}

// parseTimeKey splits a d: or x: key into its time, queue and id.
func parseTimeKey(key string) (at int64, q string, id uint64, err error) {
	parts := strings.SplitN(key[2:], ":", 3)
	if len(parts) != 3 {
		return 0, "", 0, fmt.Errorf("bad index key %q", key)
	}
	t, err1 := strconv.ParseUint(parts[0], 16, 64)
	i, err2 := strconv.ParseUint(parts[2], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, "", 0, fmt.Errorf("bad index key %q", key)
	}
	return int64(t), parts[1], i, nil
}

// idOf returns the id at the end of an r: or f: key.
func idOf(key string) (uint64, error) {
	i := strings.LastIndexByte(key, ':')
	return strconv.ParseUint(key[i+1:], 16, 64)
}
