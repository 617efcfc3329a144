package broker

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// validNameOracle is the queue-name rule written out by hand, so the fuzzer
// compares CheckQueueName against an independent statement of it: UTF-8,
// 1-128 bytes (a dead-letter queue's ".dead" aside), no '/', no C0 or C1
// control character and no DEL.
func validNameOracle(name string) bool {
	base := name
	if len(base) > MaxQueueName && strings.HasSuffix(base, ".dead") {
		base = base[:len(base)-len(".dead")]
	}
	if len(base) < 1 || len(base) > MaxQueueName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == '/' || r < 0x20 || r >= 0x7f && r <= 0x9f {
			return false
		}
	}
	return true
}

func FuzzCheckQueueName(f *testing.F) {
	for _, s := range []string{
		"jobs", "a", "A.b_c-9", "", " ", "a b", "a:1", "é", "q\x00", "q\n",
		strings.Repeat("x", MaxQueueName), strings.Repeat("x", MaxQueueName+1),
		"jobs.dead", "../etc", "%2F", "\xff", "a/b", "job/1/map", "q:1", "a:b:c", "名前", "tab\there",
		"del\x7f", "c1\u0085", "emoji 🙂", strings.Repeat("é", 64), strings.Repeat("é", 65),
		strings.Repeat("x", MaxQueueName) + ".dead", strings.Repeat("x", MaxQueueName+1) + ".dead",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckQueueName(name)
		want := validNameOracle(name)
		if got := err == nil; got != want {
			t.Fatalf("CheckQueueName(%q) = %v: valid got %v, want %v", name, err, got, want)
		}
		if got := ValidQueueName(name); got != want {
			t.Fatalf("ValidQueueName(%q) = %v, want %v", name, got, want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("CheckQueueName(%q) = %v, want an ErrInvalid error", name, err)
		}
	})
}

// FuzzParseKey checks ParseKey on arbitrary input: it never panics, refuses
// with ErrInvalid, and whatever it accepts names a valid queue and a
// positive id whose canonical key parses back to the same pair.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"jobs:1", "jobs:18446744073709551615", "jobs:18446744073709551616", "jobs:0",
		"jobs:007", "jobs:", ":1", "jobs", "a:b:1", "jobs:-1", "jobs:+1", "jobs: 1",
		"jobs.dead:3", "", ":", "é:1", "jobs:1\n", "a:b:c:7", "job/1/map:1", "名前:2", "q::3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		q, id, err := ParseKey(key)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseKey(%q) = %v, want an ErrInvalid error", key, err)
			}
			if q != "" || id != 0 {
				t.Fatalf("ParseKey(%q) failed but returned %q, %d; want zero values", key, q, id)
			}
			return
		}
		if !ValidQueueName(q) || id == 0 {
			t.Fatalf("ParseKey(%q) = %q, %d; want a valid queue and an id > 0", key, q, id)
		}
		canon := Message{Queue: q, ID: id}.Key()
		if digits := key[strings.LastIndexByte(key, ':')+1:]; digits[0] != '0' && canon != key {
			t.Fatalf("ParseKey(%q) then Key() = %q, want the input back", key, canon)
		}
		checkKeyRoundTrip(t, q, id)
	})
}

// FuzzKeyRoundTrip builds keys from valid queue names and ids: ParseKey must
// return exactly what Message.Key was made from.
func FuzzKeyRoundTrip(f *testing.F) {
	f.Add("jobs", uint64(1))
	f.Add("a.b_c-D", uint64(1<<63))
	f.Add(strings.Repeat("q", MaxQueueName), ^uint64(0))
	f.Add("q.dead", uint64(10))
	f.Add("a:b", uint64(2))
	f.Add("名前 with spaces", uint64(3))
	f.Fuzz(func(t *testing.T, queue string, id uint64) {
		if !ValidQueueName(queue) || id == 0 {
			return // not a key the broker would make
		}
		checkKeyRoundTrip(t, queue, id)
	})
}

func checkKeyRoundTrip(t *testing.T, queue string, id uint64) {
	t.Helper()
	key := Message{Queue: queue, ID: id}.Key()
	if want := queue + ":" + strconv.FormatUint(id, 10); key != want {
		t.Fatalf("Key() = %q, want %q", key, want)
	}
	q, got, err := ParseKey(key)
	if err != nil || q != queue || got != id {
		t.Fatalf("ParseKey(%q) = %q, %d, %v; want %q, %d, nil", key, q, got, err, queue, id)
	}
}

// FuzzCheckInternalQueueName checks that the two namespaces never meet: no
// name is both a valid public name and a valid internal one.
func FuzzCheckInternalQueueName(f *testing.F) {
	for _, s := range []string{"job/1/map", "job/1/map.dead", "/", "a", "a/b\x00", "", strings.Repeat("/", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		pub, internal := CheckQueueName(name) == nil, CheckInternalQueueName(name) == nil
		if pub && internal {
			t.Fatalf("%q is both a public and an internal queue name", name)
		}
		if internal != (IsInternalQueue(name) && checkAnyQueueName(name) == nil) {
			t.Fatalf("%q: CheckInternalQueueName and checkAnyQueueName disagree", name)
		}
	})
}
