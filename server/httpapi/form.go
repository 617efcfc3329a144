package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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
	for _, n := range names {
		if vs, ok := r.Form[n]; ok && len(vs) > 0 {
			return vs[0], true
		}
	}
	return "", false
}

// messageFromRequest reads a pushed message the RestMQ way: form field
// value (or msg), or else the raw body; ttl in seconds from form or query.
func messageFromRequest(c echo.Context, valueFields ...string) (broker.NewMessage, error) {
	r := c.Request()
	var m broker.NewMessage
	if isForm(r) {
		if err := parseForm(c); err != nil {
			return m, err
		}
		v, ok := formValue(r, valueFields...)
		if !ok {
			return m, badRequest("form field %s is required", strings.Join(valueFields, " or "))
		}
		m.Value = []byte(v)
	} else {
		if err := r.ParseForm(); err != nil { // query only: the body is not a form
			return m, badRequest("malformed query: %v", err)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return m, bodyError(err)
		}
		m.Value = body
	}
	ttl, err := secondsField(r, "ttl")
	if err != nil {
		return m, err
	}
	m.TTL = ttl
	return m, nil
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

// secondsField parses an optional duration in seconds (fractions allowed)
// from the form or query.
func secondsField(r *http.Request, name string) (time.Duration, error) {
	v, ok := formValue(r, name)
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
// is not UTF-8 text is sent as base64 with "encoding":"base64".
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
