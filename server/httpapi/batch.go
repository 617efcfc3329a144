package httpapi

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// batchItem is one message of a batch push: a JSON string is the message
// text; an object may give "value" (text), "value_b64" (bytes) and "ttl"
// (seconds); any other JSON value is pushed as its JSON text.
type batchItem struct {
	Value    *string  `json:"value"`
	ValueB64 *string  `json:"value_b64"`
	TTL      *float64 `json:"ttl"`
}

// parseBatch reads a JSON array or NDJSON (one item per line) of messages.
func parseBatch(body []byte, ndjson bool) ([]broker.NewMessage, error) {
	var raws []json.RawMessage
	if ndjson {
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64<<10), len(body)+1)
		for line := 1; sc.Scan(); line++ {
			l := bytes.TrimSpace(sc.Bytes())
			if len(l) == 0 {
				continue
			}
			if !json.Valid(l) {
				return nil, fmt.Errorf("%w: NDJSON line %d is not JSON", broker.ErrInvalid, line)
			}
			raws = append(raws, json.RawMessage(bytes.Clone(l)))
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: NDJSON: %v", broker.ErrInvalid, err)
		}
	} else if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("%w: want a JSON array of messages (or NDJSON with Content-Type application/x-ndjson): %v", broker.ErrInvalid, err)
	}
	out := make([]broker.NewMessage, len(raws))
	for i, raw := range raws {
		m, err := parseBatchItem(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: message %d: %v", broker.ErrInvalid, i, err)
		}
		out[i] = m
	}
	return out, nil
}

func parseBatchItem(raw json.RawMessage) (broker.NewMessage, error) {
	var m broker.NewMessage
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return m, err
		}
		m.Value = []byte(s)
		return m, nil
	case '{':
		var it batchItem
		if err := json.Unmarshal(raw, &it); err != nil {
			return m, err
		}
		switch {
		case it.Value != nil && it.ValueB64 != nil:
			return m, fmt.Errorf("give value or value_b64, not both")
		case it.Value != nil:
			m.Value = []byte(*it.Value)
		case it.ValueB64 != nil:
			b, err := base64.StdEncoding.DecodeString(*it.ValueB64)
			if err != nil {
				return m, fmt.Errorf("value_b64: %v", err)
			}
			m.Value = b
		default:
			m.Value = bytes.Clone(raw)
		}
		if it.TTL != nil {
			ttl, err := seconds("ttl", *it.TTL)
			if err != nil {
				return m, err
			}
			m.TTL = ttl
		}
		return m, nil
	}
	m.Value = bytes.Clone(raw)
	return m, nil
}

// pushBatch is POST /api/v1/queues/{queue}/messages: many messages in one
// transaction.
func (a *API) pushBatch(c echo.Context) error {
	ndjson := mediaType(c.Request()) == "application/x-ndjson"
	if !ndjson {
		if err := checkJSONType(c.Request()); err != nil {
			return err
		}
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	msgs, err := parseBatch(body, ndjson)
	if err != nil {
		return err
	}
	out, err := a.broker.Push(c.Request().Context(), c.Param("queue"), msgs)
	if err != nil {
		return err
	}
	keys := make([]string, len(out))
	for i, m := range out {
		keys[i] = m.Key()
	}
	return c.JSON(http.StatusCreated, map[string]any{"queue": c.Param("queue"), "count": len(keys), "keys": keys})
}
