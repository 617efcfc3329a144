package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// FuzzReadMessage feeds arbitrary bodies, under each content type a client
// sends, to the RestMQ push parser (readMessage, with the ttl): it never panics, and the message is a
// form's value (or msg) field when the body is a urlencoded form that has
// one, and else the body itself, byte for byte (curl --data-binary).
func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		"value=hello", "msg=m&value=v", "value=%zz", "hello all", "ttl=60", "value=a&ttl=-1",
		"\xff\xd8\xff\xe0JFIF%zz&=;", "", "value=", "a=1;b=2", "value=x&value=y",
	} {
		for ctype := range 3 {
			f.Add([]byte(s), uint8(ctype))
		}
	}
	types := []string{formType, "text/plain", ""}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte, ctype uint8) {
		req := httptest.NewRequest(http.MethodPost, "/q/fuzz", bytes.NewReader(body))
		if ct := types[int(ctype)%len(types)]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		c := e.NewContext(req, httptest.NewRecorder())
		m, _, err := messageFromRequest(c, []string{"value", "msg"})
		want := string(body)
		form, ferr := url.ParseQuery(string(body))
		isForm := req.Header.Get("Content-Type") == formType && ferr == nil
		if v, ok := firstField(form, "value", "msg"); isForm && ok {
			want = v
		}
		if err != nil {
			if ttl := firstValue(form, "ttl"); !isForm || ttl == "" || httpStatus(err) != http.StatusBadRequest {
				t.Fatalf("readMessage(%q) = %v, want an error only for a bad ttl", body, err)
			}
			return
		}
		if string(m.Value) != want {
			t.Fatalf("readMessage(%q, %q) = %q, want %q", body, req.Header.Get("Content-Type"), m.Value, want)
		}
	})
}

// FuzzOriginAllowed checks the cross-origin rule on arbitrary Origin
// headers, hosts and allowed entries: it never panics, a request without an
// Origin or from the server's own host passes, and with nothing allowed no
// other origin does; an origin listed exactly passes.
func FuzzOriginAllowed(f *testing.F) {
	for _, s := range [][3]string{
		{"http://localhost:8000", "localhost:8888", "http://localhost:8000"},
		{"https://a.example.com", "api.example.com", "https://*.example.com"},
		{"null", "h", "null"}, {"", "h", ""}, {"http://h", "h", ""}, {"::", "h", "*"},
		{"http://[::1]:80", "[::1]:80", "[::1]:*"}, {"HTTP://X", "y", "http://x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, origin, host, allow string) {
		r := httptest.NewRequest(http.MethodGet, "/ws/q", nil)
		r.Host = host
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		none := &API{}
		some := &API{cfg: Config{AllowOrigins: []string{allow}}}
		u, err := url.Parse(origin)
		sameHost := err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
		if got := none.originAllowed(r); got != (origin == "" || sameHost) {
			t.Fatalf("no --allow-origin: originAllowed(Origin %q, Host %q) = %v", origin, host, got)
		}
		if allow != "" && strings.EqualFold(allow, origin) && !some.originAllowed(r) {
			t.Fatalf("--allow-origin %q: Origin %q refused", allow, origin)
		}
		if (origin == "" || sameHost) && !some.originAllowed(r) {
			t.Fatalf("--allow-origin %q: Origin %q on its own host %q refused", allow, origin, host)
		}
	})
}

// FuzzSSEEvent formats arbitrary data as a Server-Sent Event and parses it
// back as an EventSource does: the data comes back whole, every line break
// as LF, and the event is exactly its fields and one blank line.
func FuzzSSEEvent(f *testing.F) {
	for _, s := range []string{"hello", "two\nlines", "crlf\r\nand cr\rend", "", "\n", "data: x", "\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev := sseEvent("binary", "q:1", data)
		body, ok := bytes.CutSuffix(ev, []byte("\n\n"))
		if !ok {
			t.Fatalf("sseEvent(%q) = %q: want it to end with a blank line", data, ev)
		}
		var got []string
		for i, line := range strings.Split(string(body), "\n") {
			switch {
			case i == 0 && line == "event: binary", i == 1 && line == "id: q:1":
			case strings.HasPrefix(line, "data: "):
				got = append(got, strings.TrimPrefix(line, "data: "))
			default:
				t.Fatalf("sseEvent(%q) = %q: stray line %q", data, ev, line)
			}
		}
		want := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n")
		if strings.Join(got, "\n") != want {
			t.Fatalf("sseEvent(%q) parses back as %q, want %q", data, strings.Join(got, "\n"), want)
		}
	})
}

const formType = "application/x-www-form-urlencoded"
