package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/tabreduce/tabreduce/server/kv"
)

// Type bytes. RESP2 has + - : $ *; RESP3 adds _ # , ~ % and others; the
// seed's dialect adds ^ (UTF-8 text), @ (JSON), % (dict) and & (set).
const (
	typeSimple = '+'
	typeError  = '-'
	typeInt    = ':'
	typeBulk   = '$'
	typeArray  = '*'
	typeText   = '^'
	typeJSON   = '@'
	typeDict   = '%'
	typeSet    = '&'
	typeNull   = '_'
	typeBool   = '#'
	typeDouble = ','
	typeSet3   = '~'
	typePush   = '>'
)

// ErrProtocol wraps every malformed request: the connection answers it with
// an error and closes, since the rest of the stream cannot be trusted.
var ErrProtocol = errors.New("Protocol error")

// valueCost is what one element of a request is charged against
// MaxRequest beside its bytes: about the memory a parsed value takes.
const valueCost = 64

// reader parses requests from a buffered stream, within Limits.
type reader struct {
	br  *bufio.Reader
	lim *Limits

	budget  int    // bytes this request may still take
	dialect bool   // the request used a type of the seed's dialect
	scratch []byte // bulk payloads are read here before becoming strings
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// readRequest reads one request: an array of values (a command and its
// arguments), a single text or bytes value that is split at spaces as the
// seed does, or an inline command line. It returns no arguments for an
// empty request. dialect reports whether the request used a type only the
// seed's dialect has.
func (r *reader) readRequest(args []kv.Value) (_ []kv.Value, dialect bool, err error) {
	r.budget, r.dialect = r.lim.MaxRequest, false
	c, err := r.br.ReadByte()
	if err != nil {
		return nil, false, err
	}
	switch c {
	case typeArray:
		n, err := r.count()
		if err != nil || n <= 0 {
			return args, false, err // *0 and *-1 are empty requests
		}
		if n > r.lim.MaxElements {
			return nil, false, protoErr("request of %d arguments, the limit is %d", n, r.lim.MaxElements)
		}
		if err := r.charge(n * valueCost); err != nil {
			return nil, false, err
		}
		for range n {
			v, err := r.value(1)
			if err != nil {
				return nil, false, err
			}
			args = append(args, v)
		}
		return args, r.dialect, nil
	case typeBulk, typeText, typeJSON, typeSimple, typeInt, typeDict, typeSet, typeNull, typeBool, typeDouble, typeSet3:
		if err := r.br.UnreadByte(); err != nil {
			return nil, false, err
		}
		v, err := r.value(0)
		if err != nil {
			return nil, false, err
		}
		if !v.IsString() {
			return append(args, v), r.dialect, nil // the command table refuses it
		}
		return splitInline(args, []byte(v.Str()), v.Kind()), r.dialect, nil
	}
	if err := r.br.UnreadByte(); err != nil {
		return nil, false, err
	}
	line, err := r.line(r.lim.MaxInline)
	if err != nil {
		return nil, false, err
	}
	return splitInline(args, line, kv.Bytes), false, nil
}

// splitInline splits a command line at spaces and tabs into arguments of
// kind (text or bytes).
func splitInline(args []kv.Value, line []byte, kind kv.Kind) []kv.Value {
	for _, f := range bytes.Fields(line) {
		if kind == kv.Text {
			args = append(args, kv.TextValue(string(f)))
		} else {
			args = append(args, kv.BytesValue(f))
		}
	}
	return args
}

func (r *reader) charge(n int) error {
	r.budget -= n
	if r.budget < 0 {
		return protoErr("request larger than %d bytes", r.lim.MaxRequest)
	}
	return nil
}

// line reads up to '\n' and returns the line without its CRLF (a bare LF
// is accepted, as inline commands send it). The slice is valid until the
// next read.
func (r *reader) line(max int) ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == nil {
		if len(line) > max+2 {
			return nil, protoErr("line longer than %d bytes", max)
		}
		return trimEOL(line), nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	buf := append([]byte(nil), line...)
	for {
		if len(buf) > max+2 {
			return nil, protoErr("line longer than %d bytes", max)
		}
		line, err = r.br.ReadSlice('\n')
		buf = append(buf, line...)
		if err == nil {
			if len(buf) > max+2 {
				return nil, protoErr("line longer than %d bytes", max)
			}
			return trimEOL(buf), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// maxHeader bounds the line after a type byte that carries a number.
const maxHeader = 32

// count reads a length or count line: -1 or 0..max int.
func (r *reader) count() (int, error) {
	line, err := r.line(maxHeader)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(line))
	if err != nil || n < -1 {
		return 0, protoErr("invalid length %q", line)
	}
	return n, nil
}

// value reads one value at nesting depth.
func (r *reader) value(depth int) (kv.Value, error) {
	if depth > r.lim.MaxDepth {
		return kv.Value{}, protoErr("values nested more than %d deep", r.lim.MaxDepth)
	}
	c, err := r.br.ReadByte()
	if err != nil {
		return kv.Value{}, err
	}
	switch c {
	case typeBulk, typeText, typeJSON:
		return r.bulk(c, depth)
	case typeSimple:
		line, err := r.line(r.lim.MaxInline)
		if err != nil {
			return kv.Value{}, err
		}
		return kv.BytesValue(line), r.charge(len(line))
	case typeInt:
		return r.number()
	case typeArray, typeSet, typeSet3:
		if c == typeSet {
			r.dialect = true
		}
		items, null, err := r.aggregate(depth, 1)
		switch {
		case err != nil:
			return kv.Value{}, err
		case null:
			return kv.NullValue(), nil
		case c == typeArray:
			return kv.ArrayValue(items), nil
		}
		return kv.SetValue(items), nil
	case typeDict:
		r.dialect = true
		items, null, err := r.aggregate(depth, 2)
		if err != nil || null {
			return kv.NullValue(), err
		}
		pairs := make([]kv.Pair, len(items)/2)
		for i := range pairs {
			pairs[i] = kv.Pair{Key: items[2*i], Value: items[2*i+1]}
		}
		return kv.DictValue(pairs), nil
	case typeNull:
		_, err := r.line(0)
		return kv.NullValue(), err
	case typeBool:
		line, err := r.line(1)
		if err == nil && (len(line) != 1 || (line[0] != 't' && line[0] != 'f')) {
			err = protoErr("invalid boolean %q", line)
		}
		return kv.BoolValue(err == nil && line[0] == 't'), err
	case typeDouble:
		line, err := r.line(maxHeader)
		if err != nil {
			return kv.Value{}, err
		}
		f, err := strconv.ParseFloat(string(line), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return kv.Value{}, protoErr("invalid double %q", line)
		}
		return kv.FloatValue(f), nil
	case typeError:
		return kv.Value{}, protoErr("an error reply is not a request")
	}
	return kv.Value{}, protoErr("unexpected type byte %q", c)
}

// aggregate reads the count of an array, set or dict (per elements per
// entry) and its elements; null reports a count of -1.
func (r *reader) aggregate(depth, per int) (items []kv.Value, null bool, err error) {
	n, err := r.count()
	if err != nil {
		return nil, false, err
	}
	if n < 0 {
		return nil, true, nil
	}
	if n > r.lim.MaxElements {
		return nil, false, protoErr("aggregate of %d elements, the limit is %d", n, r.lim.MaxElements)
	}
	if err := r.charge(n * per * valueCost); err != nil {
		return nil, false, err
	}
	items = make([]kv.Value, 0, n*per)
	for range n * per {
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, false, err
		}
		items = append(items, v)
	}
	return items, false, nil
}

// bulk reads a "$", "^" or "@" payload: bytes, UTF-8 text or JSON.
func (r *reader) bulk(c byte, depth int) (kv.Value, error) {
	n, err := r.count()
	if err != nil {
		return kv.Value{}, err
	}
	if n < 0 {
		if c != typeBulk {
			return kv.Value{}, protoErr("%q with a length of -1", c)
		}
		return kv.NullValue(), nil
	}
	if n > r.lim.MaxBulk {
		return kv.Value{}, protoErr("bulk of %d bytes, the limit is %d", n, r.lim.MaxBulk)
	}
	if err := r.charge(n); err != nil {
		return kv.Value{}, err
	}
	if cap(r.scratch) < n+2 {
		r.scratch = make([]byte, n+2)
	}
	buf := r.scratch[:n+2]
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return kv.Value{}, err
	}
	if buf[n] != '\r' || buf[n+1] != '\n' {
		return kv.Value{}, protoErr("bulk of %d bytes not followed by CRLF", n)
	}
	data := buf[:n]
	switch c {
	case typeText:
		r.dialect = true
		if !utf8.Valid(data) {
			return kv.Value{}, protoErr("'^' text is not UTF-8")
		}
		return kv.TextValue(string(data)), nil
	case typeJSON:
		r.dialect = true
		v, err := kv.ParsePlainJSON(data, r.lim.MaxDepth-depth)
		if err != nil {
			return kv.Value{}, protoErr("'@' JSON: %v", err)
		}
		return v, nil
	}
	return kv.BytesValue(data), nil
}

// number reads a ":" integer; with a '.' it is a float, as the seed reads it.
func (r *reader) number() (kv.Value, error) {
	line, err := r.line(maxHeader)
	if err != nil {
		return kv.Value{}, err
	}
	if bytes.IndexByte(line, '.') >= 0 {
		f, err := strconv.ParseFloat(string(line), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return kv.Value{}, protoErr("invalid number %q", line)
		}
		return kv.FloatValue(f), nil
	}
	n, err := strconv.ParseInt(string(line), 10, 64)
	if err != nil {
		return kv.Value{}, protoErr("invalid integer %q", line)
	}
	return kv.IntValue(n), nil
}
