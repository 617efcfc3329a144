package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/kv"
)

// kvKey returns the key of a /kv/{key} route (which may contain '/'),
// percent-decoded by unescapeParams.
func kvKey(c echo.Context) (string, error) {
	k := c.Param("*")
	return k, kv.CheckKey(k)
}

// kvGet is GET /kv/{key}: a value in its JSON form (kv's, with bytes
// inside it as {"value_b64": ...}); bytes as they were stored.
func (a *API) kvGet(c echo.Context) error {
	k, err := kvKey(c)
	if err != nil {
		return err
	}
	it, err := a.kv.Get(c.Request().Context(), k)
	if err != nil {
		return err
	}
	if it.Value.Kind() == kv.Bytes {
		return c.Blob(http.StatusOK, "application/octet-stream", []byte(it.Value.Str()))
	}
	return c.JSONBlob(http.StatusOK, kv.AppendJSON(nil, it.Value))
}

// kvPut is PUT /kv/{key}?ttl=: a value in its JSON form, or raw bytes with
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
	v := kv.BytesValue(body)
	if mediaType(r) != "application/octet-stream" {
		if err := checkJSONType(r); err != nil {
			return err
		}
		if v, err = kv.ParseJSON(body, kv.MaxDepth); err != nil {
			return fmt.Errorf("%w (or send Content-Type: application/octet-stream for raw bytes)", err)
		}
	}
	if _, err := a.kv.Set(r.Context(), kv.SetParams{Entries: []kv.Entry{{Key: k, Value: v}}, TTL: ttl}); err != nil {
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
	n, err := a.kv.Delete(c.Request().Context(), []string{k})
	if err != nil {
		return err
	}
	if n == 0 {
		return broker.ErrKeyNotFound
	}
	return c.JSON(http.StatusOK, map[string]any{"key": k, "deleted": true})
}

// kvMGet is POST /kv/mget ["a","b"]: the values in order in their JSON
// form, null for missing ones.
func (a *API) kvMGet(c echo.Context) error {
	var keys []string
	if err := decodeJSONBody(c, &keys); err != nil {
		return err
	}
	out := []byte("[")
	if len(keys) > 0 {
		items, err := a.kv.MGet(c.Request().Context(), keys)
		if err != nil {
			return err
		}
		for i, it := range items {
			if i > 0 {
				out = append(out, ',')
			}
			if it == nil {
				out = append(out, "null"...)
				continue
			}
			out = kv.AppendJSON(out, it.Value)
		}
	}
	return c.JSONBlob(http.StatusOK, append(out, ']'))
}

// kvMSet is POST /kv/mset {"a":1,"b":[...]}: every key in one transaction.
func (a *API) kvMSet(c echo.Context) error {
	if err := checkJSONType(c.Request()); err != nil {
		return err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	pairs, err := kv.ParseJSONObject(body, kv.MaxDepth)
	if err != nil {
		return err
	}
	if len(pairs) == 0 || len(pairs) > kv.MaxKeys {
		return badRequest("mset needs 1-%d keys", kv.MaxKeys)
	}
	entries := make([]kv.Entry, len(pairs))
	for i, p := range pairs {
		entries[i] = kv.Entry{Key: p.Key.Str(), Value: p.Value}
	}
	if _, err := a.kv.Set(c.Request().Context(), kv.SetParams{Entries: entries}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"stored": len(entries)})
}

// decodeJSONBody reads the body as one JSON value into v.
func decodeJSONBody(c echo.Context, v any) error {
	if err := checkJSONType(c.Request()); err != nil {
		return err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("malformed JSON: %v", err)
	}
	return nil
}
