package resp

import (
	"fmt"
	"path"
	"strings"

	"github.com/tabreduce/tabreduce/server/kv"
)

// access says who may run a command when a token is set.
type access uint8

const (
	open  access = iota // anyone: connection housekeeping that touches no data
	read                // the token, unless every name the command touches is public
	write               // the token
)

// command is one verb of the protocol.
type command struct {
	run func(c *conn, args []kv.Value)
	// arity counts the name too, as Redis does: n means exactly n
	// arguments, -n at least n.
	arity  int
	access access
	// names are the arguments that are keys, queues or channels, for
	// public reads: from first to last (negative: from the end) by step.
	first, last, step int
	// subscribed: allowed while a RESP2 connection is subscribed.
	subscribed bool
}

// commands is the protocol: every verb, what it takes and who may run it.
var commands map[string]command

func init() {
	commands = map[string]command{
		// Key/value (kvcmds.go).
		"GET":     {run: (*conn).get, arity: 2, access: read, first: 1, last: 1, step: 1},
		"MGET":    {run: (*conn).mget, arity: -2, access: read, first: 1, last: -1, step: 1},
		"EXISTS":  {run: (*conn).exists, arity: -2, access: read, first: 1, last: -1, step: 1},
		"TTL":     {run: (*conn).ttl, arity: 2, access: read, first: 1, last: 1, step: 1},
		"PTTL":    {run: (*conn).ttl, arity: 2, access: read, first: 1, last: 1, step: 1},
		"SET":     {run: (*conn).set, arity: -3, access: write},
		"SETEX":   {run: (*conn).setex, arity: 4, access: write},
		"SETNX":   {run: (*conn).setnx, arity: 3, access: write},
		"MSET":    {run: (*conn).mset, arity: -2, access: write},
		"MSETEX":  {run: (*conn).msetex, arity: -3, access: write},
		"DEL":     {run: (*conn).del, arity: -2, access: write},
		"DELETE":  {run: (*conn).del, arity: -2, access: write},
		"MDELETE": {run: (*conn).del, arity: -2, access: write},
		"INCR":    {run: (*conn).incr, arity: 2, access: write},
		"DECR":    {run: (*conn).incr, arity: 2, access: write},
		"INCRBY":  {run: (*conn).incr, arity: 3, access: write},
		"DECRBY":  {run: (*conn).incr, arity: 3, access: write},
		"APPEND":  {run: (*conn).append, arity: 3, access: write},
		"EXPIRE":  {run: (*conn).expire, arity: 3, access: write},

		// Queues (queuecmds.go). Pops are reads, as a hard get is over HTTP.
		"LPUSH": {run: (*conn).push, arity: -3, access: write},
		"RPUSH": {run: (*conn).push, arity: -3, access: write},
		"LPOP":  {run: (*conn).pop, arity: -2, access: read, first: 1, last: 1, step: 1},
		"RPOP":  {run: (*conn).pop, arity: -2, access: read, first: 1, last: 1, step: 1},
		"LLEN":  {run: (*conn).llen, arity: 2, access: read, first: 1, last: 1, step: 1},
		"BLPOP": {run: (*conn).bpop, arity: -3, access: read, first: 1, last: -2, step: 1},
		"BRPOP": {run: (*conn).bpop, arity: -3, access: read, first: 1, last: -2, step: 1},

		// Pub/sub (pubsub.go).
		"PUBLISH":     {run: (*conn).publish, arity: 3, access: write},
		"SUBSCRIBE":   {run: (*conn).subscribe, arity: -2, access: read, first: 1, last: -1, step: 1, subscribed: true},
		"UNSUBSCRIBE": {run: (*conn).unsubscribe, arity: -1, access: open, subscribed: true},

		// The connection and the server (admin.go).
		"PING":    {run: (*conn).ping, arity: -1, access: open, subscribed: true},
		"ECHO":    {run: (*conn).echo, arity: 2, access: open},
		"QUIT":    {run: (*conn).quit, arity: -1, access: open, subscribed: true},
		"AUTH":    {run: (*conn).auth, arity: -2, access: open},
		"HELLO":   {run: (*conn).hello, arity: -1, access: open},
		"SELECT":  {run: (*conn).selectDB, arity: 2, access: open},
		"CLIENT":  {run: (*conn).client, arity: -2, access: open},
		"COMMAND": {run: (*conn).commandInfo, arity: -1, access: open},
		"INFO":    {run: (*conn).info, arity: -1, access: read},
		"CONFIG":  {run: (*conn).config, arity: -2, access: read},
		"FLUSHDB": {run: (*conn).flushdb, arity: -1, access: write},
	}
}

// exec runs one request and reports whether the connection should close.
func (c *conn) exec(args []kv.Value) (quit bool) {
	c.srv.stats.commands.Add(1)
	if !args[0].IsString() {
		c.fail("ERR", "a request must begin with a command name")
		return false
	}
	name := upper(args[0].Str())
	cmd, ok := commands[name]
	switch {
	case !ok:
		c.fail("ERR", fmt.Sprintf("unknown command '%s', with args beginning with: %s", clip(args[0].Str(), 64), argPreview(args[1:])))
	case (cmd.arity > 0 && len(args) != cmd.arity) || len(args) < -cmd.arity:
		c.fail("ERR", fmt.Sprintf("wrong number of arguments for '%s' command", strings.ToLower(name)))
	case !c.authed && !c.allowed(cmd, args):
		c.fail("NOAUTH", "Authentication required.")
	case len(c.subs) > 0 && c.w.dialect != resp3 && !cmd.subscribed:
		c.fail("ERR", fmt.Sprintf("Can't execute '%s': only SUBSCRIBE / UNSUBSCRIBE / PING / QUIT are allowed in this context", strings.ToLower(name)))
	default:
		if c.batch(args) {
			return false
		}
		c.quitting = false
		cmd.run(c, args)
		return c.quitting
	}
	return false
}

// allowed reports whether an unauthenticated client may run cmd: open
// commands, and reads whose every name matches a public pattern.
func (c *conn) allowed(cmd command, args []kv.Value) bool {
	switch cmd.access {
	case open:
		return true
	case write:
		return false
	}
	pub := c.srv.cfg.PublicRead
	for _, p := range pub {
		if p == "*" {
			return true
		}
	}
	if cmd.step == 0 {
		return false // a read that names nothing is public only under "*"
	}
	last := cmd.last
	if last < 0 {
		last += len(args)
	}
	for i := cmd.first; i <= last; i += cmd.step {
		if !args[i].IsString() || !matchAny(pub, args[i].Str()) {
			return false
		}
	}
	return true
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// upper returns s in upper case, without allocating for names that are
// already upper case.
func upper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// argPreview is the start of the arguments of an unknown command, as
// Redis quotes them.
func argPreview(args []kv.Value) string {
	var b strings.Builder
	for _, a := range args {
		if b.Len() > 128 {
			break
		}
		s := a.Str()
		if !a.IsString() {
			s = string(kv.AppendJSON(nil, a))
		}
		fmt.Fprintf(&b, "'%s' ", clip(s, 32))
	}
	return b.String()
}
