// Package kv is the domain of the public key/value space: typed values
// (text, bytes, integers, floats, booleans, null, and arrays, dicts and sets
// nested in each other), their one stored form, the key rule, and the
// operations every transport shares (get, set with conditions, increments,
// appends, expiry). The HTTP API and the wire protocol both go through it,
// so a value keeps its types whichever way it was written or is read.
package kv

import (
	"math"
	"slices"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of values.
const (
	Null Kind = iota
	Bool
	Int
	Float
	Text  // UTF-8 text
	Bytes // any bytes
	Array
	Dict // pairs of any keys and values, in order, keys unique
	Set  // elements in order, unique
)

var kindNames = [...]string{"null", "bool", "int", "float", "text", "bytes", "array", "dict", "set"}

// String names the kind as error messages say it.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Value is one typed value. The zero Value is null. Values are immutable
// once built: the constructors copy nothing, so callers must not change the
// slices they pass in afterwards.
type Value struct {
	kind  Kind
	n     int64   // Int; Bool as 0 or 1
	f     float64 // Float, always finite
	s     string  // Text (valid UTF-8) or Bytes
	items []Value // Array and Set elements
	pairs []Pair  // Dict entries
}

// Pair is one entry of a dict.
type Pair struct {
	Key, Value Value
}

// NullValue returns null.
func NullValue() Value { return Value{} }

// BoolValue returns a boolean.
func BoolValue(b bool) Value {
	v := Value{kind: Bool}
	if b {
		v.n = 1
	}
	return v
}

// IntValue returns an integer.
func IntValue(n int64) Value { return Value{kind: Int, n: n} }

// FloatValue returns a float; f must be finite (parsers refuse NaN and the
// infinities, which JSON cannot hold).
func FloatValue(f float64) Value { return Value{kind: Float, f: f} }

// TextValue returns text; s must be valid UTF-8.
func TextValue(s string) Value { return Value{kind: Text, s: s} }

// BytesValue returns bytes.
func BytesValue(b []byte) Value { return Value{kind: Bytes, s: string(b)} }

// BytesString returns bytes held in a string.
func BytesString(s string) Value { return Value{kind: Bytes, s: s} }

// ArrayValue returns an array of items.
func ArrayValue(items []Value) Value { return Value{kind: Array, items: items} }

// SetValue returns a set of items: a repeated item is kept once, at its
// first place. Items are compared by their stored encoding.
func SetValue(items []Value) Value {
	seen := make(map[string]bool, len(items))
	out := items[:0:0]
	for _, it := range items {
		k := identity(it)
		if !seen[k] {
			seen[k] = true
			out = append(out, it)
		}
	}
	return Value{kind: Set, items: out}
}

// DictValue returns a dict of pairs: a repeated key keeps its first place
// and its last value, as a dict literal does. Keys are compared by their
// stored encoding.
func DictValue(pairs []Pair) Value {
	at := make(map[string]int, len(pairs))
	out := make([]Pair, 0, len(pairs))
	for _, p := range pairs {
		k := identity(p.Key)
		if i, ok := at[k]; ok {
			out[i].Value = p.Value
			continue
		}
		at[k] = len(out)
		out = append(out, p)
	}
	return Value{kind: Dict, pairs: out}
}

// identity is the key by which sets and dicts tell values apart.
func identity(v Value) string { return string(AppendJSON(nil, v)) }

// Kind returns the value's kind.
func (v Value) Kind() Kind { return v.kind }

// Bool returns a boolean's value.
func (v Value) Bool() bool { return v.n != 0 }

// Int returns an integer's value.
func (v Value) Int() int64 { return v.n }

// Float returns a float's value.
func (v Value) Float() float64 { return v.f }

// Str returns the content of text or bytes.
func (v Value) Str() string { return v.s }

// Items returns the elements of an array or a set.
func (v Value) Items() []Value { return v.items }

// Pairs returns the entries of a dict.
func (v Value) Pairs() []Pair { return v.pairs }

// IsString reports whether the value is text or bytes.
func (v Value) IsString() bool { return v.kind == Text || v.kind == Bytes }

// Equal reports whether a and b are the same value: the same kind and
// content, arrays in order, dicts and sets in any order.
func Equal(a, b Value) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case Null:
		return true
	case Bool, Int:
		return a.n == b.n
	case Float:
		return math.Float64bits(a.f) == math.Float64bits(b.f)
	case Text, Bytes:
		return a.s == b.s
	case Array:
		return slices.EqualFunc(a.items, b.items, Equal)
	case Set:
		return len(a.items) == len(b.items) && sameMembers(a.items, b.items)
	case Dict:
		if len(a.pairs) != len(b.pairs) {
			return false
		}
		byKey := make(map[string]Value, len(b.pairs))
		for _, p := range b.pairs {
			byKey[identity(p.Key)] = p.Value
		}
		for _, p := range a.pairs {
			w, ok := byKey[identity(p.Key)]
			if !ok || !Equal(p.Value, w) {
				return false
			}
		}
		return true
	}
	return false
}

func sameMembers(a, b []Value) bool {
	in := make(map[string]bool, len(b))
	for _, it := range b {
		in[identity(it)] = true
	}
	for _, it := range a {
		if !in[identity(it)] {
			return false
		}
	}
	return true
}
