package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// FuzzLeaseJSON checks that the hand-written lease encoding is the bytes
// encoding/json gives for the same message, whatever its strings hold.
func FuzzLeaseJSON(f *testing.F) {
	f.Add("1.1.abc", "jobs:1", "hello", "", int64(1), 0, int64(1_700_000_000_123_456_789), "")
	f.Add("x", "a<b>&c:2", "line\nwith \"quotes\" \\ and \t\b\f\x00\x1f\x7f", "base64", int64(-3), 7, int64(0), "worker <crashed> & \u2028 \u2029")
	f.Add("\xff\xfe", "é:3", "\xed\xa0\x80 surrogate, \xc3 cut", "", int64(1<<62), 1<<30, int64(-62135596800000000000/1000), "\u00e9\U0001F600")
	f.Fuzz(func(t *testing.T, lease, key, value, encoding string, count int64, attempts int, deadline int64, errText string) {
		l := leaseJSON{
			Lease: lease, Key: key, Value: value, Encoding: encoding, Count: count,
			Attempts: attempts, Deadline: time.Unix(0, deadline).UTC(), Error: errText,
		}
		want, err := json.Marshal(l)
		if err != nil {
			return // a time json refuses; the store never makes one
		}
		if got := appendLeaseJSON(nil, &l); !bytes.Equal(got, want) {
			t.Fatalf("appendLeaseJSON = %s\nencoding/json  = %s", got, want)
		}
		var wantStr bytes.Buffer
		enc := json.NewEncoder(&wantStr)
		if err := enc.Encode(key); err != nil {
			t.Fatal(err)
		}
		if got := append(appendJSONString(nil, key), '\n'); !bytes.Equal(got, wantStr.Bytes()) {
			t.Fatalf("appendJSONString = %s, encoding/json = %s", got, wantStr.Bytes())
		}
	})
}

// FuzzMessageJSON checks that the hand-written encoding of a hard get's
// answer is the bytes encoding/json gives, whatever its strings hold.
func FuzzMessageJSON(f *testing.F) {
	f.Add("jobs:1", "hello", "", int64(0))
	f.Add("a<b>&c:2", "line\nwith \"quotes\" \\ and \t\b\f\x00\x1f\x7f \u2028", "base64", int64(-3))
	f.Add("\xff\xfe:3", "\xed\xa0\x80 surrogate, \xc3 cut", "\u00e9", int64(1<<62))
	f.Fuzz(func(t *testing.T, key, value, encoding string, count int64) {
		m := messageJSON{Key: key, Value: value, Encoding: encoding, Count: count}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendMessageJSON(nil, &m); !bytes.Equal(got, want) {
			t.Fatalf("appendMessageJSON = %s\nencoding/json     = %s", got, want)
		}
	})
}

// FuzzPlainLeases checks that whatever the plain reading of an ack's body
// takes, encoding/json reads as the same lease ids.
func FuzzPlainLeases(f *testing.F) {
	f.Add([]byte(`{"leases":["1.1.abc.1","2.1.abc.1"]}`))
	f.Add([]byte(`{"leases":[]}`))
	f.Add([]byte(`{"leases":["a"],"lease":"b"}`))
	f.Add([]byte(`{"leases":["a\u0041"]}`))
	f.Add([]byte(`{"leases":["a",]}`))
	f.Add([]byte(`{"leases":[""]}`))
	f.Add([]byte(`{"leases":["x"]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := plainLeases(body)
		if !ok {
			return
		}
		var want leaseBody
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("plainLeases(%q) = %q, but encoding/json refuses it: %v", body, got, err)
		}
		if want.Leases == nil || !slices.Equal(got, want.Leases) || want.Lease != "" || want.N != nil {
			t.Fatalf("plainLeases(%q) = %q, encoding/json reads %+v", body, got, want)
		}
	})
}

// writeLeases answers with the very bytes and type c.JSON gave.
func TestWriteLeasesIsJSON(t *testing.T) {
	out := []leaseJSON{
		{Lease: "1.1.x", Key: "q:1", Value: "<a & b>", Count: 1, Deadline: time.Unix(1_700_000_000, 5).UTC()},
		{Lease: "2.3.y", Key: "q:2", Value: "AAE=", Encoding: "base64", Count: 3, Attempts: 2, Deadline: time.Unix(1_700_000_001, 0).UTC(), Error: "boom"},
	}
	// Leases of one call share a deadline, formatted once; one in another
	// zone at the same instant is written as its own.
	at := time.Unix(1_700_000_002, 123456789)
	shared := []leaseJSON{
		{Lease: "3.1.z", Key: "q:3", Value: "a", Count: 1, Deadline: at.UTC()},
		{Lease: "4.1.z", Key: "q:4", Value: "b", Count: 1, Deadline: at.UTC()},
		{Lease: "5.1.z", Key: "q:5", Value: "c", Count: 1, Deadline: at.In(time.FixedZone("x", 3600))},
		{Lease: "6.1.z", Key: "q:6", Value: "d", Count: 1, Deadline: at.Add(time.Nanosecond).UTC()},
	}
	for _, tc := range []struct {
		name string
		out  []leaseJSON
	}{{"two", out}, {"shared deadline", shared}, {"none", []leaseJSON{}}} {
		e := echo.New()
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/queues/q/lease", nil)
		if err := writeLeases(e.NewContext(req, got), "q\u2028<", broker.StatusPaused, tc.out); err != nil {
			t.Fatal(err)
		}
		m := map[string]any{"queue": "q\u2028<", "status": broker.StatusPaused, "messages": tc.out}
		if err := e.NewContext(req, want).JSON(http.StatusOK, m); err != nil {
			t.Fatal(err)
		}
		if got.Body.String() != want.Body.String() || got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("%s: writeLeases = %d %q %s\nc.JSON      = %d %q %s", tc.name,
				got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}

// BenchmarkLeaseJSON encodes a lease answer of 100 messages of 100 bytes,
// by hand and through encoding/json.
func BenchmarkLeaseJSON(b *testing.B) {
	out := make([]leaseJSON, 100)
	for i := range out {
		out[i] = leaseJSON{Lease: "123456.1.mzx1ab2c", Key: "bench:123456", Value: string(bytes.Repeat([]byte("x"), 100)),
			Count: 1, Deadline: time.Unix(1_700_000_000, int64(i)).UTC()}
	}
	m := map[string]any{"queue": "bench", "status": broker.StatusActive, "messages": out}
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			buf := make([]byte, 0, 20000)
			buf = append(buf, `{"messages":[`...)
			for i := range out {
				buf = appendLeaseJSON(buf, &out[i])
			}
			_ = buf
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			if err := json.NewEncoder(&buf).Encode(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
