package resp

import (
	"bufio"
	"strconv"
	"strings"

	"github.com/tabreduce/tabreduce/server/kv"
)

// dialect is how a connection's replies are spelled.
type dialect uint8

const (
	// resp2 shows every value as a string: text and bytes as they are,
	// numbers in decimal, anything else as its JSON form (what GET /kv
	// shows), so that every RESP2 client can read every value.
	resp2 dialect = iota
	// resp3 (after HELLO 3) shows values in RESP3's own types: maps, sets,
	// doubles, booleans, null.
	resp3
	// seed is the dialect of the miniature Redis this project grew from:
	// text as '^', bytes as '$', dicts as '%', sets as '&', floats as ':'
	// with a '.', booleans as '@' JSON. A connection speaks it from the
	// first request that uses one of its types.
	seed
)

// writer encodes replies in a connection's dialect.
type writer struct {
	bw      *bufio.Writer
	dialect dialect
	num     []byte // scratch for numbers
}

func (w *writer) line(c byte, s string) {
	w.bw.WriteByte(c)
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

func (w *writer) header(c byte, n int) {
	w.bw.WriteByte(c)
	w.num = strconv.AppendInt(w.num[:0], int64(n), 10)
	w.bw.Write(w.num)
	w.bw.WriteString("\r\n")
}

// simple writes a status reply, "+OK".
func (w *writer) simple(s string) { w.line(typeSimple, s) }

// error writes an error reply: kind is its first word (ERR, WRONGTYPE,
// NOAUTH...). Line breaks in msg become spaces.
func (w *writer) error(kind, msg string) {
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	}
	w.line(typeError, kind+" "+msg)
}

// integer writes an integer reply.
func (w *writer) integer(n int64) {
	w.bw.WriteByte(typeInt)
	w.num = strconv.AppendInt(w.num[:0], n, 10)
	w.bw.Write(w.num)
	w.bw.WriteString("\r\n")
}

// bulk writes bytes.
func (w *writer) bulk(s string) {
	w.header(typeBulk, len(s))
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// text writes a string that is text: '^' in the seed's dialect, else bulk.
func (w *writer) text(s string) {
	if w.dialect != seed {
		w.bulk(s)
		return
	}
	w.header(typeText, len(s))
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// null writes a missing value.
func (w *writer) null() {
	if w.dialect == resp3 {
		w.bw.WriteString("_\r\n")
		return
	}
	w.bw.WriteString("$-1\r\n")
}

// nullArray writes a missing list (BLPOP's time-out).
func (w *writer) nullArray() {
	switch w.dialect {
	case resp3:
		w.bw.WriteString("_\r\n")
	case seed:
		w.bw.WriteString("$-1\r\n")
	default:
		w.bw.WriteString("*-1\r\n")
	}
}

// array writes the header of an array of n replies.
func (w *writer) array(n int) { w.header(typeArray, n) }

// push writes the header of an out-of-band message of n replies (pub/sub):
// a RESP3 push, an array otherwise.
func (w *writer) push(n int) {
	if w.dialect == resp3 {
		w.header(typePush, n)
		return
	}
	w.header(typeArray, n)
}

// dict writes the header of n key-value pairs: a map in RESP3 and the
// seed's dialect, a flat array of 2n replies in RESP2.
func (w *writer) dict(n int) {
	if w.dialect == resp2 {
		w.header(typeArray, 2*n)
		return
	}
	w.header(typeDict, n)
}

// boolean writes true or false: an integer 1 or 0 in RESP2.
func (w *writer) boolean(b bool) {
	switch {
	case w.dialect == resp3 && b:
		w.bw.WriteString("#t\r\n")
	case w.dialect == resp3:
		w.bw.WriteString("#f\r\n")
	case b:
		w.bw.WriteString(":1\r\n")
	default:
		w.bw.WriteString(":0\r\n")
	}
}

// value writes a stored value in the connection's dialect.
func (w *writer) value(v kv.Value) {
	if w.dialect == resp2 {
		w.valueAsString(v)
		return
	}
	w.typed(v)
}

func (w *writer) valueAsString(v kv.Value) {
	switch v.Kind() {
	case kv.Text, kv.Bytes:
		w.bulk(v.Str())
	case kv.Int:
		w.num = strconv.AppendInt(w.num[:0], v.Int(), 10)
		w.bulk(string(w.num))
	default:
		w.num = kv.AppendJSON(w.num[:0], v)
		w.bulk(string(w.num))
	}
}

// typed writes v in its own types: RESP3's, or the seed's.
func (w *writer) typed(v kv.Value) {
	switch v.Kind() {
	case kv.Null:
		w.null()
	case kv.Bool:
		w.typedBool(v.Bool())
	case kv.Int:
		w.integer(v.Int())
	case kv.Float:
		if w.dialect == seed {
			w.line(typeInt, seedFloat(v.Float()))
		} else {
			w.num = kv.AppendFloat(w.num[:0], v.Float())
			w.line(typeDouble, string(w.num))
		}
	case kv.Text:
		w.text(v.Str())
	case kv.Bytes:
		w.bulk(v.Str())
	case kv.Array, kv.Set:
		c := byte(typeArray)
		if v.Kind() == kv.Set {
			c = map[dialect]byte{resp3: typeSet3, seed: typeSet}[w.dialect]
		}
		w.header(c, len(v.Items()))
		for _, it := range v.Items() {
			w.typed(it)
		}
	case kv.Dict:
		w.header(typeDict, len(v.Pairs()))
		for _, p := range v.Pairs() {
			w.typed(p.Key)
			w.typed(p.Value)
		}
	}
}

// typedBool writes a stored boolean: RESP3's own, or '@' JSON in the
// seed's dialect, which has no boolean of its own.
func (w *writer) typedBool(b bool) {
	if w.dialect == resp3 {
		w.boolean(b)
		return
	}
	s := "false"
	if b {
		s = "true"
	}
	w.header(typeJSON, len(s))
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// seedFloat spells a float so that the seed reads it as one: its ':'
// reader takes a number with a '.' for a float, so 1e+21 is 1.0e+21.
func seedFloat(f float64) string {
	s := string(kv.AppendFloat(nil, f))
	if strings.IndexByte(s, '.') >= 0 {
		return s
	}
	i := strings.IndexByte(s, 'e')
	return s[:i] + ".0" + s[i:]
}
