package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// isForm reports whether the request body is an HTML form.
func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

func mediaType(r *http.Request) string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt
}

// parseForm parses the query and a form body, reporting a malformed one.
func parseForm(c echo.Context) error {
	r := c.Request()
	var err error
	if mediaType(r) == "multipart/form-data" {
		err = r.ParseMultipartForm(32 << 20)
	} else {
		err = r.ParseForm()
	}
	var he *echo.HTTPError
	var maxErr *http.MaxBytesError
	if errors.As(err, &he) || errors.As(err, &maxErr) { // the body was too large
		return bodyError(err)
	}
	if err != nil {
		return badRequest("malformed form: %v", err)
	}
	return nil
}

// formValue returns the first non-empty of the named form or query fields.
func formValue(r *http.Request, names ...string) (string, bool) {
	return firstField(r.Form, names...)
}

// messageFromRequest reads a pushed message the RestMQ way (see
// readMessage) and its ttl, in seconds, from the request's fields.
func messageFromRequest(c echo.Context, valueFields []string, formFields ...string) (broker.NewMessage, url.Values, error) {
	m, fields, err := readMessage(c, valueFields, formFields...)
	if err != nil {
		return m, nil, err
	}
	if m.TTL, err = secondsOf(fields, "ttl"); err != nil {
		return m, nil, err
	}
	return m, fields, nil
}

// readMessage reads a pushed message the RestMQ way, with the request's
// fields (query, and the body's when it is a form). A form body that has one
// of valueFields gives the message from the first of them; any other body is
// the message itself, since curl sends --data-binary as a form: a body that
// is not a form, or does not parse as one, or is a form with none of
// valueFields and none of formFields (fields that only a form would carry,
// such as POST /'s queue).
func readMessage(c echo.Context, valueFields []string, formFields ...string) (broker.NewMessage, url.Values, error) {
	r := c.Request()
	var m broker.NewMessage
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return m, nil, badRequest("malformed query: %v", err)
	}
	fields := query
	if mediaType(r) == "multipart/form-data" {
		if err := parseForm(c); err != nil {
			return m, nil, err
		}
		v, ok := formValue(r, valueFields...)
		if !ok {
			return m, nil, badRequest("form field %s is required", strings.Join(valueFields, " or "))
		}
		m.Value, fields = []byte(v), r.Form
	} else {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return m, nil, bodyError(err)
		}
		m.Value = body
		if form, ok := bodyForm(r, body); ok {
			if v, ok := firstField(form, valueFields...); ok {
				m.Value, fields = []byte(v), mergeFields(query, form)
			} else if _, ok := firstField(form, formFields...); ok {
				return m, nil, badRequest("form field %s is required", strings.Join(valueFields, " or "))
			}
		}
	}
	return m, fields, nil
}

// bodyForm parses an application/x-www-form-urlencoded body; ok is false
// for any other body, or one that does not parse as a form.
func bodyForm(r *http.Request, body []byte) (url.Values, bool) {
	if mediaType(r) != "application/x-www-form-urlencoded" {
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	return form, err == nil
}

// mergeFields returns the body's fields followed by the query's, as
// Request.Form orders them.
func mergeFields(query, form url.Values) url.Values {
	out := url.Values{}
	for _, vs := range []url.Values{form, query} {
		for k, v := range vs {
			out[k] = append(out[k], v...)
		}
	}
	return out
}

// firstField returns the first value of the first of names that is present.
func firstField(fields url.Values, names ...string) (string, bool) {
	for _, n := range names {
		if vs, ok := fields[n]; ok && len(vs) > 0 {
			return vs[0], true
		}
	}
	return "", false
}

// firstValue returns the first value of name, or "".
func firstValue(fields url.Values, name string) string {
	v, _ := firstField(fields, name)
	return v
}

// bodyError maps a body read failure: too large is a 413.
func bodyError(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxErr.Limit))
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he
	}
	return badRequest("reading body: %v", err)
}

// secondsOf parses an optional duration in seconds (fractions allowed).
func secondsOf(fields url.Values, name string) (time.Duration, error) {
	v, ok := firstField(fields, name)
	if !ok || v == "" {
		return 0, nil
	}
	return parseSeconds(name, v)
}

func parseSeconds(name, v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, badRequest("%s must be a number of seconds, got %q", name, truncate(v, 32))
	}
	return seconds(name, f)
}

// seconds converts a number of seconds, refusing negative and absurd ones.
func seconds(name string, f float64) (time.Duration, error) {
	if !(f >= 0 && f <= 1e9) {
		return 0, badRequest("%s must be between 0 and 1e9 seconds, got %g", name, f)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// messageJSON is RestMQ's shape of a message: key, value, count. A value that
// is not UTF-8 text is sent as base64 with "encoding":"base64". RestMQ's
// COMET and WebSocket consumers get key and value; ours also say, in count,
// how many times the message has been handed out, this time included.
type messageJSON struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Count    int64  `json:"count"`
	Encoding string `json:"encoding,omitempty"`
}

func toMessageJSON(m broker.Message) messageJSON {
	out := messageJSON{Key: m.Key(), Count: m.Count}
	out.Value, out.Encoding = encodeValue(m.Value)
	return out
}

func encodeValue(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func byteSize(n int64) string { return strconv.FormatInt(n, 10) + "B" }
