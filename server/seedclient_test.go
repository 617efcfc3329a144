package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seedClient speaks the dialect of the miniature Redis this project grew
// from, over a plain socket, as its Python client does: a request is an
// array of typed values; Go strings go as '^' text, []byte as '$' bytes,
// integers as ':', floats as ':' with a '.', nil as a null bulk, []any as
// '*', seedDict as '%', seedSet as '&', and seedJSON as '@'.
type seedClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// seedDict is a dict, in order.
type seedDict [][2]any

// seedSet is a set, in order.
type seedSet []any

// seedJSON is sent as '@' JSON.
type seedJSON string

// seedError is an error reply.
type seedError string

// seedSimple is a simple-string reply.
type seedSimple string

func dialSeed(t *testing.T, addr string) *seedClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &seedClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// do sends one command and returns its reply.
func (c *seedClient) do(args ...any) any {
	c.t.Helper()
	c.send(args...)
	return c.reply()
}

func (c *seedClient) send(args ...any) {
	c.t.Helper()
	var b strings.Builder
	seedWrite(&b, args)
	c.nc.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := io.WriteString(c.nc, b.String()); err != nil {
		c.t.Fatalf("send %v: %v", args, err)
	}
}

func (c *seedClient) reply() any {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitFor))
	v, err := seedRead(c.br)
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return v
}

func seedWrite(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("$-1\r\n")
	case string:
		fmt.Fprintf(b, "^%d\r\n%s\r\n", len(v), v)
	case []byte:
		fmt.Fprintf(b, "$%d\r\n%s\r\n", len(v), v)
	case int:
		fmt.Fprintf(b, ":%d\r\n", v)
	case int64:
		fmt.Fprintf(b, ":%d\r\n", v)
	case float64:
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		fmt.Fprintf(b, ":%s\r\n", s)
	case seedJSON:
		fmt.Fprintf(b, "@%d\r\n%s\r\n", len(v), v)
	case []any:
		fmt.Fprintf(b, "*%d\r\n", len(v))
		for _, it := range v {
			seedWrite(b, it)
		}
	case seedSet:
		fmt.Fprintf(b, "&%d\r\n", len(v))
		for _, it := range v {
			seedWrite(b, it)
		}
	case seedDict:
		fmt.Fprintf(b, "%%%d\r\n", len(v))
		for _, p := range v {
			seedWrite(b, p[0])
			seedWrite(b, p[1])
		}
	default:
		panic(fmt.Sprintf("seedWrite: %T", v))
	}
}

// seedRead reads one reply as the seed's client reads it.
func seedRead(br *bufio.Reader) (any, error) {
	c, err := br.ReadByte()
	if err != nil {
		return nil, err
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch c {
	case '+':
		return seedSimple(line), nil
	case '-':
		return seedError(line), nil
	case ':':
		if strings.Contains(line, ".") {
			return strconv.ParseFloat(line, 64)
		}
		return strconv.ParseInt(line, 10, 64)
	case '$', '^', '@':
		n, err := strconv.Atoi(line)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, err
		}
		data = data[:n]
		switch c {
		case '^':
			return string(data), nil
		case '@':
			var v any
			return v, json.Unmarshal(data, &v)
		}
		return data, nil
	case '*', '&', '%':
		n, err := strconv.Atoi(line)
		if err != nil {
			return nil, err
		}
		per := 1
		if c == '%' {
			per = 2
		}
		items := make([]any, 0, n*per)
		for range n * per {
			v, err := seedRead(br)
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
		switch c {
		case '&':
			return seedSet(items), nil
		case '%':
			d := make(seedDict, n)
			for i := range d {
				d[i] = [2]any{items[2*i], items[2*i+1]}
			}
			return d, nil
		}
		return items, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", c)
}
