package kv

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/tabreduce/tabreduce/server/broker"
)

// IncrBy adds delta to a key's number and returns the new value; a missing
// key counts as 0. An integer stays an integer, a float stays a float, and
// text or bytes that spell an integer in decimal become an integer.
func (s *Space) IncrBy(ctx context.Context, key string, delta int64) (Value, error) {
	return s.update(ctx, key, func(cur *Value) (Value, error) { return incr(cur, delta) })
}

func incr(cur *Value, delta int64) (Value, error) {
	if cur == nil {
		return IntValue(delta), nil
	}
	n := cur.n
	switch cur.kind {
	case Int:
	case Float:
		f := cur.f + float64(delta)
		if math.IsInf(f, 0) {
			return Value{}, ErrOverflow
		}
		return FloatValue(f), nil
	case Text, Bytes:
		var ok bool
		if n, ok = ParseInteger(cur.s); !ok {
			return Value{}, ErrNotInteger
		}
	default:
		return Value{}, fmt.Errorf("%w: cannot increment %s", ErrWrongType, cur.kind)
	}
	sum := n + delta
	if (delta > 0 && sum < n) || (delta < 0 && sum > n) {
		return Value{}, ErrOverflow
	}
	return IntValue(sum), nil
}

// ParseInteger reads a decimal integer spelled as its canonical form is:
// an optional '-', no leading zeros, no '+', no spaces.
func ParseInteger(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && strconv.FormatInt(n, 10) == s
}

// Append appends v to a key's value and returns the new length: in bytes
// for text and bytes (a number counts as its decimal text), in elements for
// an array (an array v is appended item by item). A missing key is set to
// v. Text stays text while what is appended is UTF-8; otherwise the result
// is bytes.
func (s *Space) Append(ctx context.Context, key string, v Value) (int, error) {
	switch v.kind {
	case Text, Bytes, Int, Float, Array:
	default:
		return 0, fmt.Errorf("%w: cannot append %s", broker.ErrInvalid, v.kind)
	}
	next, err := s.update(ctx, key, func(cur *Value) (Value, error) { return appendTo(cur, v) })
	if err != nil {
		return 0, err
	}
	if next.kind == Array {
		return len(next.items), nil
	}
	return len(next.s), nil
}

func appendTo(cur *Value, v Value) (Value, error) {
	if cur == nil {
		if v.kind == Int || v.kind == Float {
			return TextValue(numberText(v)), nil
		}
		return v, nil
	}
	switch cur.kind {
	case Array:
		items := slices.Clip(cur.items)
		if v.kind == Array {
			return ArrayValue(append(items, v.items...)), nil
		}
		return ArrayValue(append(items, v)), nil
	case Text, Bytes, Int, Float:
		if v.kind == Array {
			return Value{}, fmt.Errorf("%w: cannot append an array to %s", ErrWrongType, cur.kind)
		}
		head, tail := numberText(*cur), numberText(v)
		if cur.kind != Bytes && utf8.ValidString(tail) {
			return TextValue(head + tail), nil
		}
		return BytesString(head + tail), nil
	}
	return Value{}, fmt.Errorf("%w: cannot append to %s", ErrWrongType, cur.kind)
}

// numberText is a string's content, or a number's decimal text.
func numberText(v Value) string {
	switch v.kind {
	case Int:
		return strconv.FormatInt(v.n, 10)
	case Float:
		return string(AppendFloat(nil, v.f))
	}
	return v.s
}
