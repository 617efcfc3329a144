package kv

import (
	"errors"
	"fmt"

	"github.com/tabreduce/tabreduce/server/broker"
)

// ErrBadValue wraps every failure to read a value's JSON form: malformed
// JSON, a reserved member of the wrong shape, nesting too deep. It wraps
// broker.ErrInvalid, so a caller's bad value answers as bad input.
var ErrBadValue = fmt.Errorf("%w: malformed JSON", broker.ErrInvalid)

// errCorrupt says a stored value does not read back: the store holds
// something no writer of this package wrote.
var errCorrupt = errors.New("stored value does not decode")

// MaxDepth bounds how deeply arrays, dicts and sets nest in one value.
const MaxDepth = 64

// Encode returns v's stored form. A value is stored as its JSON form, except
// bytes at the top, which are stored as they are (as raw HTTP values always
// were), so the store's value format stays one thing for every writer.
func Encode(v Value) broker.KVValue {
	if v.kind == Bytes {
		return broker.KVValue{Data: []byte(v.s), Raw: true}
	}
	return broker.KVValue{Data: AppendJSON(nil, v)}
}

// Decode reads a stored value back, validating it.
func Decode(s broker.KVValue) (Value, error) {
	if s.Raw {
		return BytesValue(s.Data), nil
	}
	v, err := ParseJSON(s.Data, MaxDepth)
	if err != nil {
		return Value{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return v, nil
}
