package resp

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/kv"
)

// The key/value commands. Values keep their types: a value SET in the
// seed's dialect comes back in it with the same types, and RESP2 clients
// read every value as a string (writer.go).

func (c *conn) get(args []kv.Value) {
	key, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	it, err := c.srv.deps.KV.Get(c.ctx, key)
	switch {
	case errors.Is(err, broker.ErrKeyNotFound):
		c.w.null()
	case err != nil:
		c.failErr(err)
	default:
		c.w.value(it.Value)
	}
}

func (c *conn) mget(args []kv.Value) {
	keys, ok := c.namesOf(args[1:])
	if !ok {
		return
	}
	items, err := c.srv.deps.KV.MGet(c.ctx, keys)
	if err != nil {
		c.failErr(err)
		return
	}
	c.w.array(len(items))
	for _, it := range items {
		c.valueOrNull(it)
	}
}

func (c *conn) valueOrNull(it *kv.Item) {
	if it == nil {
		c.w.null()
		return
	}
	c.w.value(it.Value)
}

func (c *conn) exists(args []kv.Value) {
	keys, ok := c.namesOf(args[1:])
	if !ok {
		return
	}
	n, err := c.srv.deps.KV.Exists(c.ctx, keys)
	c.intOrErr(int64(n), err)
}

func (c *conn) intOrErr(n int64, err error) {
	if err != nil {
		c.failErr(err)
		return
	}
	c.w.integer(n)
}

// ttl is TTL and PTTL: -2 for a missing key, -1 for one that never
// expires, else the time left (in seconds rounded, or milliseconds).
func (c *conn) ttl(args []kv.Value) {
	key, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	it, err := c.srv.deps.KV.Get(c.ctx, key)
	switch {
	case errors.Is(err, broker.ErrKeyNotFound):
		c.w.integer(-2)
	case err != nil:
		c.failErr(err)
	case it.Expires.IsZero():
		c.w.integer(-1)
	default:
		ms := max(time.Until(it.Expires).Milliseconds(), 0)
		if upper(args[0].Str()) == "TTL" {
			ms = (ms + 500) / 1000
		}
		c.w.integer(ms)
	}
}

// setOptions are SET's and MSETEX's options.
type setOptions struct {
	cond    kv.Cond
	ttl     time.Duration
	keepTTL bool
	get     bool
}

// parseSetOptions reads NX, XX, GET (if allowed), KEEPTTL and one of EX,
// PX, EXAT and PXAT with its number.
func parseSetOptions(args []kv.Value, cmd string, allowGet bool) (setOptions, error) {
	var o setOptions
	expiry := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case option(a, "NX") && o.cond == kv.Always:
			o.cond = kv.IfAbsent
		case option(a, "XX") && o.cond == kv.Always:
			o.cond = kv.IfPresent
		case option(a, "GET") && allowGet && !o.get:
			o.get = true
		case option(a, "KEEPTTL") && !expiry:
			o.keepTTL, expiry = true, true
		case !expiry && i+1 < len(args) && (option(a, "EX") || option(a, "PX") || option(a, "EXAT") || option(a, "PXAT")):
			n, err := integer(args[i+1])
			if err != nil {
				return o, err
			}
			if o.ttl, err = expiryOption(a.Str(), n, cmd); err != nil {
				return o, err
			}
			expiry = true
			i++
		default:
			return o, errSyntax
		}
	}
	return o, nil
}

// expiryOption turns EX, PX, EXAT or PXAT n into a time to live; a moment
// already past expires the keys at once.
func expiryOption(opt string, n int64, cmd string) (time.Duration, error) {
	invalid := fmt.Errorf("%w: invalid expire time in '%s' command", broker.ErrInvalid, cmd)
	var ttl time.Duration
	switch upper(opt) {
	case "EX":
		return duration(n, time.Second, cmd)
	case "PX":
		return duration(n, time.Millisecond, cmd)
	case "EXAT":
		ttl = time.Until(time.Unix(n, 0))
	default:
		ttl = time.Until(time.UnixMilli(n))
	}
	if n <= 0 || ttl > kv.MaxTTL {
		return 0, invalid
	}
	return max(ttl, time.Nanosecond), nil
}

// set is SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL].
func (c *conn) set(args []kv.Value) {
	key, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	o, err := parseSetOptions(args[3:], "set", true)
	if err != nil {
		c.failErr(err)
		return
	}
	res, err := c.srv.deps.KV.Set(c.ctx, kv.SetParams{Entries: []kv.Entry{{Key: key, Value: args[2]}}, If: o.cond, TTL: o.ttl, KeepTTL: o.keepTTL, Prev: o.get})
	switch {
	case err != nil:
		c.failErr(err)
	case o.get:
		c.valueOrNull(res.Prev[0])
	case res.Applied:
		c.w.simple("OK")
	default:
		c.w.null()
	}
}

// setex is SETEX key seconds value, or the seed's SETEX key value seconds:
// a typed integer last is the seconds.
func (c *conn) setex(args []kv.Value) {
	value, secs := args[3], args[2]
	if args[3].Kind() == kv.Int {
		value, secs = args[2], args[3]
	}
	key, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	n, err := integer(secs)
	if err != nil {
		c.failErr(err)
		return
	}
	ttl, err := duration(n, time.Second, "setex")
	if err != nil {
		c.failErr(err)
		return
	}
	_, err = c.srv.deps.KV.Set(c.ctx, kv.SetParams{Entries: []kv.Entry{{Key: key, Value: value}}, TTL: ttl})
	c.okOrErr(err)
}

func (c *conn) okOrErr(err error) {
	if err != nil {
		c.failErr(err)
		return
	}
	c.w.simple("OK")
}

func (c *conn) setnx(args []kv.Value) {
	key, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	res, err := c.srv.deps.KV.Set(c.ctx, kv.SetParams{Entries: []kv.Entry{{Key: key, Value: args[2]}}, If: kv.IfAbsent})
	if err != nil {
		c.failErr(err)
		return
	}
	c.w.integer(b2i(res.Applied))
}

// entries reads key value pairs: one dict (the seed's MSET), or keys and
// values in turn.
func entries(args []kv.Value, cmd string) ([]kv.Entry, error) {
	if len(args) == 1 && args[0].Kind() == kv.Dict {
		out := make([]kv.Entry, len(args[0].Pairs()))
		for i, p := range args[0].Pairs() {
			k, err := name(p.Key)
			if err != nil {
				return nil, err
			}
			out[i] = kv.Entry{Key: k, Value: p.Value}
		}
		return out, nil
	}
	if len(args) == 0 || len(args)%2 != 0 {
		return nil, fmt.Errorf("%w: wrong number of arguments for '%s' command", broker.ErrInvalid, cmd)
	}
	out := make([]kv.Entry, len(args)/2)
	for i := range out {
		k, err := name(args[2*i])
		if err != nil {
			return nil, err
		}
		out[i] = kv.Entry{Key: k, Value: args[2*i+1]}
	}
	return out, nil
}

func (c *conn) mset(args []kv.Value) {
	es, err := entries(args[1:], "mset")
	if err != nil {
		c.failErr(err)
		return
	}
	_, err = c.srv.deps.KV.Set(c.ctx, kv.SetParams{Entries: es})
	c.okOrErr(err)
}

// msetex is MSETEX numkeys key value ... [NX|XX] [EX s|PX ms|EXAT t|PXAT
// t|KEEPTTL], or the seed's MSETEX dict seconds. It answers 1 if it set
// the keys, 0 if a condition failed.
func (c *conn) msetex(args []kv.Value) {
	var es []kv.Entry
	var o setOptions
	var err error
	if args[1].Kind() == kv.Dict {
		if len(args) != 3 {
			c.failErr(errSyntax)
			return
		}
		es, err = entries(args[1:2], "msetex")
		if err == nil {
			var n int64
			if n, err = integer(args[2]); err == nil {
				o.ttl, err = duration(n, time.Second, "msetex")
			}
		}
	} else {
		var n int64
		if n, err = integer(args[1]); err == nil && (n <= 0 || int64(len(args)-2) < 2*n) {
			err = fmt.Errorf("%w: invalid numkeys value", broker.ErrInvalid)
		}
		if err == nil {
			es, err = entries(args[2:2+2*n], "msetex")
		}
		if err == nil {
			o, err = parseSetOptions(args[2+2*n:], "msetex", false)
		}
	}
	if err != nil {
		c.failErr(err)
		return
	}
	res, err := c.srv.deps.KV.Set(c.ctx, kv.SetParams{Entries: es, If: o.cond, TTL: o.ttl, KeepTTL: o.keepTTL})
	if err != nil {
		c.failErr(err)
		return
	}
	c.w.integer(b2i(res.Applied))
}

// del is DEL, and the seed's DELETE and MDELETE: how many keys existed.
func (c *conn) del(args []kv.Value) {
	keys, ok := c.namesOf(args[1:])
	if !ok {
		return
	}
	n, err := c.srv.deps.KV.Delete(c.ctx, keys)
	c.intOrErr(int64(n), err)
}

// incr is INCR, DECR, INCRBY and DECRBY. An integer answers as an integer;
// a float stays a float.
func (c *conn) incr(args []kv.Value) {
	key, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	delta := int64(1)
	cmd := upper(args[0].Str())
	if len(args) == 3 {
		var err error
		if delta, err = integer(args[2]); err != nil {
			c.failErr(err)
			return
		}
	}
	if cmd == "DECR" || cmd == "DECRBY" {
		if delta == math.MinInt64 {
			c.failErr(kv.ErrOverflow)
			return
		}
		delta = -delta
	}
	v, err := c.srv.deps.KV.IncrBy(c.ctx, key, delta)
	switch {
	case err != nil:
		c.failErr(err)
	case v.Kind() == kv.Int:
		c.w.integer(v.Int())
	default:
		c.w.value(v)
	}
}

func (c *conn) append(args []kv.Value) {
	key, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	n, err := c.srv.deps.KV.Append(c.ctx, key, args[2])
	c.intOrErr(int64(n), err)
}

// expire is EXPIRE key seconds: 1 if the key exists; zero or fewer seconds
// delete it.
func (c *conn) expire(args []kv.Value) {
	key, ok := c.nameOf(args[1])
	if !ok {
		return
	}
	n, err := integer(args[2])
	if err != nil {
		c.failErr(err)
		return
	}
	var ttl time.Duration
	if n > 0 {
		if ttl, err = duration(n, time.Second, "expire"); err != nil {
			c.failErr(err)
			return
		}
	}
	set, err := c.srv.deps.KV.Expire(c.ctx, key, ttl)
	if err != nil {
		c.failErr(err)
		return
	}
	c.w.integer(b2i(set))
}

// b2i is 1 for true, as Redis answers conditions.
func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
