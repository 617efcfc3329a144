package resp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/kv"
)

// Argument errors, worded as Redis words them.
var (
	errNotInteger = fmt.Errorf("%w: value is not an integer or out of range", broker.ErrInvalid)
	errNotFloat   = fmt.Errorf("%w: timeout is not a float or out of range", broker.ErrInvalid)
	errSyntax     = fmt.Errorf("%w: syntax error", broker.ErrInvalid)
)

// name returns an argument that names a key, a queue or a channel: text or
// bytes.
func name(v kv.Value) (string, error) {
	if !v.IsString() {
		return "", fmt.Errorf("%w: a name must be text or bytes, got %s", broker.ErrInvalid, v.Kind())
	}
	return v.Str(), nil
}

func names(args []kv.Value) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		var err error
		if out[i], err = name(a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nameOf is name for a command: a bad name is answered, and ok is false.
func (c *conn) nameOf(v kv.Value) (string, bool) {
	n, err := name(v)
	if err != nil {
		c.failErr(err)
	}
	return n, err == nil
}

// namesOf is names for a command, as nameOf.
func (c *conn) namesOf(args []kv.Value) ([]string, bool) {
	out, err := names(args)
	if err != nil {
		c.failErr(err)
	}
	return out, err == nil
}

// integer returns an integer argument: a ':' integer, or text or bytes that
// spell one.
func integer(v kv.Value) (int64, error) {
	switch v.Kind() {
	case kv.Int:
		return v.Int(), nil
	case kv.Text, kv.Bytes:
		if n, ok := kv.ParseInteger(v.Str()); ok {
			return n, nil
		}
	}
	return 0, errNotInteger
}

// seconds returns a number of seconds (BLPOP's timeout): an integer or a
// float, typed or spelled.
func seconds(v kv.Value) (float64, error) {
	switch v.Kind() {
	case kv.Int:
		return float64(v.Int()), nil
	case kv.Float:
		return v.Float(), nil
	case kv.Text, kv.Bytes:
		f, err := strconv.ParseFloat(v.Str(), 64)
		if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, nil
		}
	}
	return 0, errNotFloat
}

// duration returns n units as a duration, refusing what is not positive or
// longer than kv.MaxTTL.
func duration(n int64, unit time.Duration, cmd string) (time.Duration, error) {
	if n <= 0 || n > int64(kv.MaxTTL/unit) {
		return 0, fmt.Errorf("%w: invalid expire time in '%s' command", broker.ErrInvalid, cmd)
	}
	return time.Duration(n) * unit, nil
}

// message returns a queue message or a pub/sub payload: text or bytes.
func message(v kv.Value) ([]byte, error) {
	if !v.IsString() {
		return nil, fmt.Errorf("%w: a message must be text or bytes, got %s", broker.ErrInvalid, v.Kind())
	}
	return []byte(v.Str()), nil
}

// option reports whether an argument is the given option word, in any case.
func option(v kv.Value, word string) bool {
	return v.IsString() && strings.EqualFold(v.Str(), word)
}
