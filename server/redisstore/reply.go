package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Everything read back from Redis is checked before it is believed: a
// reply of the wrong shape, a number out of range or a time that is not
// one is errCorrupt, never a panic or a zero value passed on.

// errCorrupt marks data in Redis that the store did not write as it is.
var errCorrupt = errors.New("redis store: corrupt data")

func corrupt(what string, v any) error {
	s := fmt.Sprint(v)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return fmt.Errorf("%w: %s: %s", errCorrupt, what, s)
}

func asSlice(v any, minLen int, what string) ([]any, error) {
	a, ok := v.([]any)
	if !ok || len(a) < minLen {
		return nil, corrupt(what, v)
	}
	return a, nil
}

func asInt(v any, what string) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case string:
		if i, err := strconv.ParseInt(n, 10, 64); err == nil {
			return i, nil
		}
	}
	return 0, corrupt(what, v)
}

// asCount is a non-negative integer.
func asCount(v any, what string) (int64, error) {
	n, err := asInt(v, what)
	if err == nil && n < 0 {
		err = corrupt(what, v)
	}
	return n, err
}

func asString(v any, what string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", corrupt(what, v)
	}
	return s, nil
}

// asTime reads a 20-digit nanosecond time.
func asTime(v any, what string) (int64, error) {
	s, ok := v.(string)
	if !ok || len(s) != 20 {
		return 0, corrupt(what, v)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, corrupt(what, v)
	}
	return n, nil
}

// asID reads a message id: a decimal integer from 1.
func asID(v any, what string) (uint64, error) {
	s, ok := v.(string)
	if !ok {
		if n, isInt := v.(int64); isInt && n > 0 {
			return uint64(n), nil
		}
		return 0, corrupt(what, v)
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, corrupt(what, v)
	}
	return id, nil
}

// leased is a message as a script replies it, with its lease fields.
type leased struct {
	msg      broker.Message
	seq      int64
	created  int64
	deadline int64
}

// decodeMessage reads {id, count, attempts, created, expires, error,
// value, lease sequence, deadline}.
func decodeMessage(queue string, v any) (leased, error) {
	var l leased
	a, err := asSlice(v, 9, "message")
	if err != nil {
		return l, err
	}
	m := broker.Message{Queue: queue}
	if m.ID, err = asID(a[0], "message id"); err != nil {
		return l, err
	}
	what := queue + ":" + strconv.FormatUint(m.ID, 10)
	var attempts, expires int64
	if m.Count, err = asCount(a[1], what+" count"); err != nil {
		return l, err
	}
	if attempts, err = asCount(a[2], what+" attempts"); err != nil {
		return l, err
	}
	m.Attempts = int(attempts)
	if l.created, err = asTime(a[3], what+" created"); err != nil {
		return l, err
	}
	if expires, err = asTime(a[4], what+" expires"); err != nil {
		return l, err
	}
	if m.Error, err = asString(a[5], what+" error"); err != nil {
		return l, err
	}
	value, err := asString(a[6], what+" value")
	if err != nil {
		return l, err
	}
	if l.seq, err = asCount(a[7], what+" lease"); err != nil {
		return l, err
	}
	if l.deadline, err = asTime(a[8], what+" deadline"); err != nil {
		return l, err
	}
	m.Value = []byte(value)
	m.Created, m.Expires = fromNanos(l.created), fromNanos(expires)
	l.msg = m
	return l, nil
}

// lease turns a leased message into the broker's lease.
func (l leased) lease() broker.Lease {
	return broker.Lease{ID: leaseID(l.msg.ID, l.seq, l.created), Message: l.msg, Deadline: fromNanos(l.deadline)}
}

// leaseID names one hand-out of a message: its id, the count at that
// time (a lease that expired and was handed out again is no longer valid)
// and its creation time in base 36 (a lease from before a purge never
// names the message that later takes the same id).
func leaseID(id uint64, seq, created int64) string {
	return strconv.FormatUint(id, 10) + "." + strconv.FormatInt(seq, 10) + "." + strconv.FormatInt(created, 36)
}

// leaseRef is a parsed lease id as the scripts take it.
type leaseRef struct {
	id, seq, created string
}

// parseLeaseID splits a lease id; ok is false for anything leaseID cannot
// have made.
func parseLeaseID(s string) (leaseRef, bool) {
	a, rest, ok1 := strings.Cut(s, ".")
	b, c, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return leaseRef{}, false
	}
	id, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	created, err3 := strconv.ParseInt(c, 36, 64)
	if err1 != nil || err2 != nil || err3 != nil || id == 0 || seq <= 0 || created < 0 {
		return leaseRef{}, false
	}
	return leaseRef{id: strconv.FormatUint(id, 10), seq: strconv.FormatInt(seq, 10), created: pad(created)}, true
}

// decodeEvents reads an event text (lib.lua's events): the origin, then
// kind and queue per event, NUL-separated.
func decodeEvents(blob string) (origin string, evs []broker.Event, err error) {
	if blob == "" {
		return "", nil, nil
	}
	parts := strings.Split(blob, "\x00")
	if len(parts) < 2 || parts[0] == "" {
		return "", nil, corrupt("events", blob)
	}
	for _, p := range parts[1:] {
		if p == "" {
			return "", nil, corrupt("event", blob)
		}
		kind, ok := eventKinds[p[0]]
		if !ok {
			return "", nil, corrupt("event kind", blob)
		}
		evs = append(evs, broker.Event{Kind: kind, Queue: p[1:]})
	}
	return parts[0], evs, nil
}

// eventKinds are the event letters the scripts and Go write.
var eventKinds = map[byte]broker.EventKind{
	'p': broker.EventPush,
	's': broker.EventState,
	'u': broker.EventPurge,
	'f': broker.EventFlush,
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
