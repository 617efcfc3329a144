package kv

import (
	"encoding/base64"
	"math"
	"strconv"
)

// A value's JSON form is how the HTTP API shows it and how it is stored.
// JSON's own types carry text (strings), integers (numbers without a fraction
// or exponent that fit 64 bits), floats (every other number; written with a
// '.' or an exponent so that they stay floats), booleans, null, arrays and
// dicts whose keys are all text (objects). The other kinds are objects with
// one reserved member:
//
//	{"value_b64": "AAE="}           bytes, in standard base64 (as a batch push spells them)
//	{"value_set": [1, "a"]}         a set
//	{"value_dict": [[1, "one"]]}    a dict with a key that is not text, or one that
//	                                would read as one of these three forms
const (
	MemberBytes = "value_b64"
	MemberSet   = "value_set"
	MemberDict  = "value_dict"
)

// AppendJSON appends v's JSON form to dst.
func AppendJSON(dst []byte, v Value) []byte {
	switch v.kind {
	case Null:
		return append(dst, "null"...)
	case Bool:
		if v.n != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Int:
		return strconv.AppendInt(dst, v.n, 10)
	case Float:
		return AppendFloat(dst, v.f)
	case Text:
		return appendJSONString(dst, v.s)
	case Bytes:
		dst = append(dst, `{"`+MemberBytes+`":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(v.s))
		return append(dst, `"}`...)
	case Array:
		return appendJSONList(dst, v.items)
	case Set:
		dst = append(dst, `{"`+MemberSet+`":`...)
		return append(appendJSONList(dst, v.items), '}')
	case Dict:
		if plainDict(v.pairs) {
			dst = append(dst, '{')
			for i, p := range v.pairs {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendJSONString(dst, p.Key.s)
				dst = append(dst, ':')
				dst = AppendJSON(dst, p.Value)
			}
			return append(dst, '}')
		}
		dst = append(dst, `{"`+MemberDict+`":[`...)
		for i, p := range v.pairs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = AppendJSON(dst, p.Key)
			dst = append(dst, ',')
			dst = AppendJSON(dst, p.Value)
			dst = append(dst, ']')
		}
		return append(dst, "]}"...)
	}
	return append(dst, "null"...)
}

// plainDict reports whether a dict can be a plain JSON object: every key is
// text, and it does not look like one of the reserved forms.
func plainDict(pairs []Pair) bool {
	for _, p := range pairs {
		if p.Key.kind != Text {
			return false
		}
	}
	if len(pairs) == 1 {
		switch pairs[0].Key.s {
		case MemberBytes, MemberSet, MemberDict:
			return false
		}
	}
	return true
}

func appendJSONList(dst []byte, items []Value) []byte {
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSON(dst, it)
	}
	return append(dst, ']')
}

// AppendFloat appends a float as JSON writes it, always with a '.' or an
// exponent, so that reading it back gives a float again (1.0, not 1).
func AppendFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	for _, c := range dst[start:] {
		if c == '.' || c == 'e' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[last:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		last = i + 1
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"')
}
