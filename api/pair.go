package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// PairJSON is one output record as JSON: a line of a job's NDJSON output,
// and the message its output queue receives. Key and value are strings when
// they are UTF-8 text; otherwise they are base64 in key_b64 and value_b64.
type PairJSON struct {
	Key      *string `json:"key,omitempty"`
	KeyB64   string  `json:"key_b64,omitempty"`
	Value    *string `json:"value,omitempty"`
	ValueB64 string  `json:"value_b64,omitempty"`
}

// NewPairJSON encodes one record.
func NewPairJSON(key, value []byte) PairJSON {
	var p PairJSON
	p.Key, p.KeyB64 = textOrBase64(key)
	p.Value, p.ValueB64 = textOrBase64(value)
	return p
}

// MarshalPair returns a record's JSON object, without a newline and with
// '<', '>' and '&' as they are.
func MarshalPair(key, value []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(NewPairJSON(key, value)) // strings only: cannot fail
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Bytes returns the record's key and value.
func (p PairJSON) Bytes() (key, value []byte, err error) {
	key, err = fromTextOrBase64(p.Key, p.KeyB64)
	if err == nil {
		value, err = fromTextOrBase64(p.Value, p.ValueB64)
	}
	return key, value, err
}

func textOrBase64(b []byte) (*string, string) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

func fromTextOrBase64(s *string, b64 string) ([]byte, error) {
	if s != nil {
		return []byte(*s), nil
	}
	return base64.StdEncoding.DecodeString(b64)
}
