package httpapi

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// writeLeases answers a lease call with the body encoding/json would give
// {"queue", "status", "messages"} (keys sorted, HTML escaped, a final
// newline), written by hand: reflection over every message was a fifth of
// the server's time on batches of leases. ?pretty goes through c.JSON.
func writeLeases(c echo.Context, queue string, status broker.Status, out []leaseJSON) error {
	_, pretty := c.QueryParams()["pretty"]
	size := 64 + len(queue)
	for i := range out {
		if y := out[i].Deadline.Year(); y < 0 || y > 9999 {
			pretty = true // encoding/json refuses it: let c.JSON say so
		}
		size += 160 + len(out[i].Lease) + len(out[i].Key) + len(out[i].Value) + len(out[i].Error)
	}
	if pretty {
		return c.JSON(http.StatusOK, map[string]any{"queue": queue, "status": status, "messages": out})
	}
	buf := leaseAnswers.Get().(*[]byte)
	defer putLeaseAnswer(buf)
	b := slices.Grow((*buf)[:0], size)
	b = append(b, `{"messages":[`...)
	// The leases of one call share their deadline: it is formatted once.
	var last time.Time
	var deadline []byte
	for i := range out {
		if i > 0 {
			b = append(b, ',')
		}
		if d := out[i].Deadline; i == 0 || !d.Equal(last) || d.Location() != last.Location() {
			last, deadline = d, d.AppendFormat(deadline[:0], time.RFC3339Nano)
		}
		b = appendLease(b, &out[i], deadline)
	}
	b = append(b, `],"queue":`...)
	b = appendJSONString(b, queue)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(status))
	b = append(b, "}\n"...)
	*buf = b
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b) // written before it returns
}

// leaseAnswers holds the buffers lease answers are written in, for the
// next answer: a batch of leases' answer was the largest garbage of the
// call on the server.
var leaseAnswers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledAnswer bounds the buffers leaseAnswers keeps.
const maxPooledAnswer = 1 << 20

func putLeaseAnswer(b *[]byte) {
	if cap(*b) <= maxPooledAnswer {
		leaseAnswers.Put(b)
	}
}

// appendLeaseJSON appends l as json.Marshal would encode it; its deadline's
// year must be within 0..9999, as encoding/json wants.
func appendLeaseJSON(b []byte, l *leaseJSON) []byte {
	return appendLease(b, l, l.Deadline.AppendFormat(nil, time.RFC3339Nano))
}

// appendLease is appendLeaseJSON with l's deadline given formatted.
func appendLease(b []byte, l *leaseJSON, deadline []byte) []byte {
	b = append(b, `{"lease":`...)
	b = appendJSONString(b, l.Lease)
	b = append(b, `,"key":`...)
	b = appendJSONString(b, l.Key)
	b = append(b, `,"value":`...)
	b = appendJSONString(b, l.Value)
	if l.Encoding != "" {
		b = append(b, `,"encoding":`...)
		b = appendJSONString(b, l.Encoding)
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, l.Count, 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(l.Attempts), 10)
	b = append(b, `,"deadline":"`...)
	b = append(b, deadline...)
	b = append(b, '"')
	if l.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, l.Error)
	}
	return append(b, '}')
}

// appendMessageJSON appends m as json.Marshal would encode it (a hard
// get's answer on the fast path, where reflection was a tenth of the
// request's own work).
func appendMessageJSON(b []byte, m *messageJSON) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, m.Key)
	b = append(b, `,"value":`...)
	b = appendJSONString(b, m.Value)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, m.Count, 10)
	if m.Encoding != "" {
		b = append(b, `,"encoding":`...)
		b = appendJSONString(b, m.Encoding)
	}
	return append(b, '}')
}

// appendJSONString appends s quoted the way encoding/json quotes a string
// with HTML escaping on: <, > and & as \u00XX, U+2028 and U+2029 escaped,
// invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainLeases reads an ack's body in its plainest form, as a client's
// json.Marshal writes it: {"leases":["…",…]}, nothing else in the object,
// no white space, and lease ids of [0-9A-Za-z._-] only, which is what
// every store makes. ok is false for anything else, which encoding/json
// then reads (decoding a hundred lease ids by reflection cost more than
// the store's ack of them).
func plainLeases(b []byte) (leases []string, ok bool) {
	const head, tail = `{"leases":[`, `]}`
	if !bytes.HasPrefix(b, []byte(head)) || !bytes.HasSuffix(b, []byte(tail)) || len(b) < len(head)+len(tail) {
		return nil, false
	}
	list := b[len(head) : len(b)-len(tail)]
	leases = []string{}
	if len(list) == 0 {
		return leases, true
	}
	all := string(list) // one copy; the ids are cut from it
	for i := 0; ; {
		if i >= len(all) || all[i] != '"' {
			return nil, false
		}
		j := i + 1
		for j < len(all) && plainLeaseByte(all[j]) {
			j++
		}
		if j >= len(all) || all[j] != '"' {
			return nil, false
		}
		leases = append(leases, all[i+1:j])
		switch {
		case j+1 == len(all):
			return leases, true
		case all[j+1] != ',':
			return nil, false
		}
		i = j + 2
	}
}

func plainLeaseByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-'
}
