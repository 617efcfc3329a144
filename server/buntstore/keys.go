package buntstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Key layout (version 4). A queue name is any UTF-8 text without control
// characters, so the byte 0x00 ends a name inside a key: a queue's keys are
// one contiguous range that no other queue's keys enter, whatever the names.
// Ids and times are fixed-width hex so keys sort numerically.
//
//	v:layout                          layoutVersion
//	q:{queue}                         queue state (meta)
//	r:{queue}\x00{id}                 ready message (record)
//	f:{queue}\x00{id}                 in-flight message (record with lease)
//	d:{deadline}{queue}\x00{id}       lease deadline index: "" names the
//	                                  key's id; else the uvarint ids of a
//	                                  batch leased until deadline. Acks
//	                                  leave entries; the reaper drops them
//	                                  when due (layout 3)
//	l:{queue}\x00{first}              a leased batch (batch.go, layout 4)
//	b:{deadline}{queue}\x00{first}    its deadline index entry ("")
//	x:{expires}{queue}\x00{id}        TTL index of ready messages ("")
//	k:{key}                           key/value entry (public)
//	e:{key}                           engine record (internal)
const (
	layoutKey        = "v:layout"
	metaPrefix       = "q:"
	readyPrefix      = "r:"
	flightPrefix     = "f:"
	deadlinePrefix   = "d:"
	ttlPrefix        = "x:"
	batchPrefix      = "l:"
	batchIndexPrefix = "b:"
	kvPrefix         = "k:"
	recordPrefix     = "e:"
)

// layoutVersion is the key layout this package writes; layouts 2 and 3
// are read as they are (see checkLayout).
const (
	layoutVersion = "4"
	layoutV3      = "3"
	layoutV2      = "2"
)

// nameEnd ends a queue name inside a key; no queue name holds it.
const nameEnd = "\x00"

// prefixEnd returns the smallest key above every key that starts with
// prefix (prefix must not end in 0xff).
func prefixEnd(prefix string) string {
	return prefix[:len(prefix)-1] + string(prefix[len(prefix)-1]+1)
}

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
func readyKey(q string, id uint64) string  { return readyPrefix + q + nameEnd + hex16(id) }
func flightKey(q string, id uint64) string { return flightPrefix + q + nameEnd + hex16(id) }

// queueRange returns the [lo, hi) key range of a per-queue prefix.
func queueRange(prefix, q string) (lo, hi string) {
	return prefix + q + nameEnd, prefix + q + "\x01"
}

func timeKey(prefix string, at int64, q string, id uint64) string {
	return prefix + hex16(uint64(at)) + q + nameEnd + hex16(id)
}

// parseTimeKey splits a d: or x: key into its time, queue and id.
func parseTimeKey(key string) (at int64, q string, id uint64, err error) {
	if len(key) < 2+16+1+16 {
		return 0, "", 0, fmt.Errorf("bad index key %q", key)
	}
	t, err1 := strconv.ParseUint(key[2:18], 16, 64)
	q, id, err2 := splitQueueKey(key[18:])
	if err1 != nil || err2 != nil {
		return 0, "", 0, fmt.Errorf("bad index key %q", key)
	}
	return int64(t), q, id, nil
}

// splitQueueKey splits "{queue}\x00{id}", the tail of r:, f:, d: and x: keys.
func splitQueueKey(s string) (q string, id uint64, err error) {
	i := strings.LastIndexByte(s, 0)
	if i < 0 || len(s)-i-1 != 16 {
		return "", 0, fmt.Errorf("bad message key %q", s)
	}
	id, err = strconv.ParseUint(s[i+1:], 16, 64)
	if err != nil {
		return "", 0, fmt.Errorf("bad message key %q", s)
	}
	return s[:i], id, nil
}

// parseMessageKey splits an r: or f: key into its queue and id.
func parseMessageKey(key string) (q string, id uint64, err error) {
	if len(key) < 2 {
		return "", 0, fmt.Errorf("bad message key %q", key)
	}
	return splitQueueKey(key[2:])
}
