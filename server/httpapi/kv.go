package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Key/value limits.
const (
	maxKVKey  = 512  // bytes per key
	maxKVKeys = 1000 // keys per mget or mset
)

// kvKey returns the key of a /kv/{key} route (which may contain '/').
// Echo matches routes on the escaped path only when the URL has one that
// differs from the plain path (RawPath); otherwise the key is unescaped
// already and must not be unescaped twice ("100%25" is the key "100%").
func kvKey(c echo.Context) (string, error) {
	k := c.Param("*")
	if c.Request().URL.RawPath != "" {
		var err error
		if k, err = url.PathUnescape(k); err != nil {
			return "", badRequest("malformed key: %v", err)
		}
	}
	return k, checkKVKey(k)
}

func checkKVKey(k string) error {
	if k == "" || len(k) > maxKVKey || !utf8.ValidString(k) {
		return fmt.Errorf("%w: key must be 1-%d bytes of UTF-8", broker.ErrInvalid, maxKVKey)
	}
	return nil
}

// kvGet is GET /kv/{key}: JSON values as JSON, raw ones as they were stored.
func (a *API) kvGet(c echo.Context) error {
	k, err := kvKey(c)
	if err != nil {
		return err
	}
	v, err := a.kv.KVGet(c.Request().Context(), k)
	if err != nil {
		return err
	}
	if v.Raw {
		return c.Blob(http.StatusOK, "application/octet-stream", v.Data)
	}
	return c.JSONBlob(http.StatusOK, v.Data)
}

// kvPut is PUT /kv/{key}?ttl=: a JSON body, or raw bytes with
// Content-Type application/octet-stream.
func (a *API) kvPut(c echo.Context) error {
	k, err := kvKey(c)
	if err != nil {
		return err
	}
	r := c.Request()
	var ttl time.Duration
	if v := r.URL.Query().Get("ttl"); v != "" {
		if ttl, err = parseSeconds("ttl", v); err != nil {
			return err
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	raw := mediaType(r) == "application/octet-stream"
	if !raw && !json.Valid(body) {
		return badRequest("the value must be JSON (or send Content-Type: application/octet-stream for raw bytes)")
	}
	e := broker.KVEntry{Key: k, Value: broker.KVValue{Data: body, Raw: raw}, TTL: ttl}
	if err := a.kv.KVSet(r.Context(), []broker.KVEntry{e}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"key": k, "stored": true})
}

// kvDelete is DELETE /kv/{key}.
func (a *API) kvDelete(c echo.Context) error {
	k, err := kvKey(c)
	if err != nil {
		return err
	}
	if err := a.kv.KVDelete(c.Request().Context(), k); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"key": k, "deleted": true})
}

// kvMGet is POST /kv/mget ["a","b"]: the values in order, null for missing
// ones. A raw value is a JSON string when it is UTF-8 text, else
// {"base64": "..."}.
func (a *API) kvMGet(c echo.Context) error {
	var keys []string
	if err := decodeJSONBody(c, &keys); err != nil {
		return err
	}
	if len(keys) > maxKVKeys {
		return badRequest("at most %d keys", maxKVKeys)
	}
	for _, k := range keys {
		if err := checkKVKey(k); err != nil {
			return err
		}
	}
	vals, err := a.kv.KVMGet(c.Request().Context(), keys)
	if err != nil {
		return err
	}
	out := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		out[i] = kvJSON(v)
	}
	return c.JSON(http.StatusOK, out)
}

func kvJSON(v *broker.KVValue) json.RawMessage {
	switch {
	case v == nil:
		return json.RawMessage("null")
	case !v.Raw:
		return v.Data
	case utf8.Valid(v.Data):
		b, _ := json.Marshal(string(v.Data))
		return b
	}
	b, _ := json.Marshal(map[string][]byte{"base64": v.Data})
	return b
}

// kvMSet is POST /kv/mset {"a":1,"b":[...]}: every key in one transaction.
func (a *API) kvMSet(c echo.Context) error {
	var m map[string]json.RawMessage
	if err := decodeJSONBody(c, &m); err != nil {
		return err
	}
	if len(m) == 0 || len(m) > maxKVKeys {
		return badRequest("mset needs 1-%d keys", maxKVKeys)
	}
	entries := make([]broker.KVEntry, 0, len(m))
	for k, v := range m {
		if err := checkKVKey(k); err != nil {
			return err
		}
		entries = append(entries, broker.KVEntry{Key: k, Value: broker.KVValue{Data: v}})
	}
	if err := a.kv.KVSet(c.Request().Context(), entries); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"stored": len(entries)})
}

// decodeJSONBody reads the body as one JSON value into v.
func decodeJSONBody(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("malformed JSON: %v", err)
	}
	return nil
}
