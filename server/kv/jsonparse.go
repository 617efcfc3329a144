package kv

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// The reader of the JSON form (json.go): a small recursive-descent parser
// of its own, since the standard library's keeps neither the order of an
// object's members nor integers apart from floats, and bounds no depth.

// ParseJSON reads one value in its JSON form (the reserved members read as
// the kinds they encode), nested at most maxDepth arrays and objects deep.
func ParseJSON(data []byte, maxDepth int) (Value, error) {
	return parseJSON(data, maxDepth, 0)
}

// ParsePlainJSON reads one JSON value as plain JSON: every object is a dict
// with text keys, whatever its members are called.
func ParsePlainJSON(data []byte, maxDepth int) (Value, error) {
	return parseJSON(data, maxDepth, maxDepth)
}

// ParseJSONObject reads a JSON object whose members are values in their
// JSON form: {"key": value, ...}, as a multi-key set sends them. A repeated
// member keeps its first place and its last value.
func ParseJSONObject(data []byte, maxDepth int) ([]Pair, error) {
	v, err := parseJSON(data, maxDepth, 1)
	if err == nil && v.kind != Dict {
		err = fmt.Errorf("%w: want a JSON object, got %s", ErrBadValue, v.kind)
	}
	return v.pairs, err
}

// parseJSON reads one value; objects nested at most plainDepth deep are
// plain dicts, deeper ones may be reserved forms.
func parseJSON(data []byte, maxDepth, plainDepth int) (Value, error) {
	p := jsonParser{data: data, maxDepth: maxDepth, plainDepth: plainDepth}
	v, err := p.value()
	if err == nil {
		p.space()
		if p.pos < len(p.data) {
			err = p.fail("data after the value")
		}
	}
	if err != nil {
		return Value{}, fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	return v, nil
}

type jsonParser struct {
	data       []byte
	pos        int
	depth      int
	maxDepth   int
	plainDepth int
}

func (p *jsonParser) fail(what string) error {
	return fmt.Errorf("%s at offset %d", what, p.pos)
}

func (p *jsonParser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) literal(word string, v Value) (Value, error) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return Value{}, p.fail("invalid literal")
	}
	p.pos += len(word)
	return v, nil
}

func (p *jsonParser) value() (Value, error) {
	p.space()
	if p.pos >= len(p.data) {
		return Value{}, p.fail("unexpected end")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		items, err := p.array()
		return ArrayValue(items), err
	case c == '"':
		s, err := p.string()
		return TextValue(s), err
	case c == 't':
		return p.literal("true", BoolValue(true))
	case c == 'f':
		return p.literal("false", BoolValue(false))
	case c == 'n':
		return p.literal("null", NullValue())
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return Value{}, p.fail("unexpected character")
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > p.maxDepth {
		return p.fail(fmt.Sprintf("nested more than %d deep", p.maxDepth))
	}
	p.pos++ // the opening bracket
	return nil
}

// array reads "[v, ...]".
func (p *jsonParser) array() ([]Value, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	items := []Value{}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return items, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.space()
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			return items, nil
		default:
			return nil, p.fail("want ',' or ']' in an array")
		}
	}
}

// object reads "{"k": v, ...}": a dict, or one of the reserved forms.
func (p *jsonParser) object() (Value, error) {
	if err := p.enter(); err != nil {
		return Value{}, err
	}
	var pairs []Pair
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return DictValue(nil), nil
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.fail("want a member name")
		}
		k, err := p.string()
		if err != nil {
			return Value{}, err
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.fail("want ':' after a member name")
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return Value{}, err
		}
		pairs = append(pairs, Pair{Key: TextValue(k), Value: v})
		p.space()
		if p.pos >= len(p.data) {
			return Value{}, p.fail("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			tags := p.depth > p.plainDepth
			p.depth--
			if tags && len(pairs) == 1 {
				return reserved(pairs[0])
			}
			return DictValue(pairs), nil
		default:
			return Value{}, p.fail("want ',' or '}' in an object")
		}
	}
}

// reserved reads an object of one member, which may be a reserved form.
func reserved(m Pair) (Value, error) {
	switch m.Key.s {
	case MemberBytes:
		if m.Value.kind != Text {
			return Value{}, fmt.Errorf("%s must be a base64 string, got %s", MemberBytes, m.Value.kind)
		}
		b, err := base64.StdEncoding.DecodeString(m.Value.s)
		if err != nil {
			return Value{}, fmt.Errorf("%s: %v", MemberBytes, err)
		}
		return BytesValue(b), nil
	case MemberSet:
		if m.Value.kind != Array {
			return Value{}, fmt.Errorf("%s must be an array, got %s", MemberSet, m.Value.kind)
		}
		return SetValue(m.Value.items), nil
	case MemberDict:
		if m.Value.kind != Array {
			return Value{}, fmt.Errorf("%s must be an array of [key, value] pairs, got %s", MemberDict, m.Value.kind)
		}
		pairs := make([]Pair, len(m.Value.items))
		for i, it := range m.Value.items {
			if it.kind != Array || len(it.items) != 2 {
				return Value{}, fmt.Errorf("%s entry %d must be a [key, value] pair", MemberDict, i)
			}
			pairs[i] = Pair{Key: it.items[0], Value: it.items[1]}
		}
		return DictValue(pairs), nil
	}
	return DictValue([]Pair{m}), nil
}

// number reads a JSON number: an integer when it has no fraction or
// exponent and fits in 64 bits, a float otherwise.
func (p *jsonParser) number() (Value, error) {
	start := p.pos
	isFloat := false
	if p.data[p.pos] == '-' {
		p.pos++
	}
	if p.pos < len(p.data) && p.data[p.pos] == '0' {
		p.pos++ // a leading zero stands alone: "01" ends after the 0
	} else if !p.digits() {
		return Value{}, p.fail("malformed number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		isFloat = true
		p.pos++
		if !p.digits() {
			return Value{}, p.fail("malformed number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		isFloat = true
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if !p.digits() {
			return Value{}, p.fail("malformed number")
		}
	}
	text := string(p.data[start:p.pos])
	if !isFloat {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return IntValue(n), nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		p.pos = start
		return Value{}, p.fail("number out of range")
	}
	return FloatValue(f), nil
}

// digits skips one or more decimal digits and reports whether there was one.
func (p *jsonParser) digits() bool {
	start := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// string reads a JSON string, which must be valid UTF-8.
func (p *jsonParser) string() (string, error) {
	p.pos++ // the opening quote
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			if !utf8.Valid(s) {
				return "", p.fail("string is not UTF-8")
			}
			p.pos++
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	buf := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			if !utf8.Valid(buf) {
				return "", p.fail("string is not UTF-8")
			}
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.fail("control character in a string")
		case c == '\\':
			var err error
			if buf, err = p.escape(buf); err != nil {
				return "", err
			}
		default:
			buf = append(buf, c)
			p.pos++
		}
	}
	return "", p.fail("unterminated string")
}

// escape reads one backslash escape and appends what it stands for.
func (p *jsonParser) escape(buf []byte) ([]byte, error) {
	if p.pos+1 >= len(p.data) {
		return nil, p.fail("unterminated escape")
	}
	c := p.data[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(buf, c), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return nil, p.fail("malformed \\u escape")
		}
		if r >= 0xd800 && r < 0xdc00 && p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
			save := p.pos
			p.pos += 2
			if r2, ok := p.hex4(); ok && r2 >= 0xdc00 && r2 < 0xe000 {
				return utf8.AppendRune(buf, (r-0xd800)<<10|(r2-0xdc00)+0x10000), nil
			}
			p.pos = save
		}
		if r >= 0xd800 && r < 0xe000 {
			r = utf8.RuneError // a lone surrogate, as encoding/json reads it
		}
		return utf8.AppendRune(buf, r), nil
	}
	return nil, p.fail("unknown escape")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.pos += 4
	return r, true
}
