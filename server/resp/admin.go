package resp

import (
	"crypto/subtle"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/server/kv"
)

// The commands of the connection and the server.

// compatVersion is the Redis version whose commands and replies these
// follow, for clients that look at redis_version.
const compatVersion = "7.0.0"

func (c *conn) ping(args []kv.Value) {
	if len(args) > 2 {
		c.fail("ERR", "wrong number of arguments for 'ping' command")
		return
	}
	if len(c.subs) > 0 && c.w.dialect != resp3 {
		c.w.array(2)
		c.w.bulk("pong")
		if len(args) == 2 {
			c.w.value(args[1])
		} else {
			c.w.bulk("")
		}
		return
	}
	if len(args) == 2 {
		c.w.value(args[1])
		return
	}
	c.w.simple("PONG")
}

// echo answers its argument as it came, types and all.
func (c *conn) echo(args []kv.Value) { c.w.value(args[1]) }

func (c *conn) quit([]kv.Value) {
	c.w.simple("OK")
	c.quitting = true
}

// auth is AUTH [user] token; the only user is "default".
func (c *conn) auth(args []kv.Value) {
	if len(args) > 3 {
		c.fail("ERR", "syntax error")
		return
	}
	if c.srv.cfg.Token == "" {
		c.fail("ERR", "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	if !c.login(args[1:]) {
		c.fail("WRONGPASS", "invalid username-password pair or user is disabled.")
		return
	}
	c.w.simple("OK")
}

// login checks [user] token and marks the connection authenticated.
func (c *conn) login(creds []kv.Value) bool {
	user, tok := "default", creds[len(creds)-1].Str()
	if len(creds) == 2 {
		user = creds[0].Str()
	}
	ok := user == "default" && subtle.ConstantTimeCompare([]byte(tok), []byte(c.srv.cfg.Token)) == 1
	if ok {
		c.authed = true
	}
	return ok
}

// hello is HELLO [2|3 [AUTH user token] [SETNAME name]]: the protocol
// version, and the server's description as a map.
func (c *conn) hello(args []kv.Value) {
	proto := 2
	if c.w.dialect == resp3 {
		proto = 3
	}
	if len(args) >= 2 {
		n, err := integer(args[1])
		if err != nil || (n != 2 && n != 3) {
			c.fail("NOPROTO", "unsupported protocol version")
			return
		}
		proto = int(n)
	}
	for i := 2; i < len(args); i++ {
		switch {
		case option(args[i], "AUTH") && i+2 < len(args):
			if c.srv.cfg.Token != "" && !c.login(args[i+1:i+3]) {
				c.fail("WRONGPASS", "invalid username-password pair or user is disabled.")
				return
			}
			i += 2
		case option(args[i], "SETNAME") && i+1 < len(args):
			c.name = args[i+1].Str()
			i++
		default:
			c.fail("ERR", fmt.Sprintf("syntax error in HELLO option '%s'", clip(args[i].Str(), 32)))
			return
		}
	}
	if !c.authed {
		c.fail("NOAUTH", "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if c.w.dialect != seed {
		c.w.dialect = resp2
		if proto == 3 {
			c.w.dialect = resp3
		}
	}
	c.w.dict(7)
	c.w.bulk("server")
	c.w.bulk("tabreduce")
	c.w.bulk("version")
	c.w.bulk(compatVersion)
	c.w.bulk("proto")
	c.w.integer(int64(proto))
	c.w.bulk("id")
	c.w.integer(c.id)
	c.w.bulk("mode")
	c.w.bulk("standalone")
	c.w.bulk("role")
	c.w.bulk("master")
	c.w.bulk("modules")
	c.w.array(0)
}

// selectDB is SELECT: there is one database, 0.
func (c *conn) selectDB(args []kv.Value) {
	if n, err := integer(args[1]); err != nil || n != 0 {
		c.fail("ERR", "DB index is out of range")
		return
	}
	c.w.simple("OK")
}

// client is CLIENT SETNAME, GETNAME, ID, SETINFO and INFO.
func (c *conn) client(args []kv.Value) {
	switch sub := upper(args[1].Str()); {
	case sub == "SETNAME" && len(args) == 3:
		c.name = args[2].Str()
		c.w.simple("OK")
	case sub == "GETNAME" && len(args) == 2:
		if c.name == "" {
			c.w.null()
			return
		}
		c.w.bulk(c.name)
	case sub == "ID" && len(args) == 2:
		c.w.integer(c.id)
	case sub == "SETINFO" && len(args) == 4:
		c.w.simple("OK")
	case sub == "INFO" && len(args) == 2:
		c.w.bulk(fmt.Sprintf("id=%d addr=%s name=%s resp=%d\n", c.id, c.nc.RemoteAddr(), c.name, c.protoNumber()))
	default:
		c.fail("ERR", fmt.Sprintf("unknown subcommand or wrong number of arguments for '%s'", clip(args[1].Str(), 32)))
	}
}

func (c *conn) protoNumber() int {
	if c.w.dialect == resp3 {
		return 3
	}
	return 2
}

// commandInfo is COMMAND: no command documentation, only the count.
func (c *conn) commandInfo(args []kv.Value) {
	switch {
	case len(args) == 1:
		c.w.array(0)
	case upper(args[1].Str()) == "COUNT":
		c.w.integer(int64(len(commands)))
	case upper(args[1].Str()) == "DOCS":
		c.w.dict(0)
	case upper(args[1].Str()) == "LIST":
		list := make([]string, 0, len(commands))
		for name := range commands {
			list = append(list, strings.ToLower(name))
		}
		slices.Sort(list)
		c.w.array(len(list))
		for _, n := range list {
			c.w.bulk(n)
		}
	default:
		c.w.array(0)
	}
}

// info is INFO [section]: the server, its clients and counters, in Redis's
// "key:value" lines.
func (c *conn) info(args []kv.Value) {
	s := c.srv
	sections := []struct {
		name  string
		lines []string
	}{
		{"server", []string{
			"redis_version:" + compatVersion,
			"server_name:tabreduce",
			"redis_mode:standalone",
			"process_id:" + strconv.Itoa(os.Getpid()),
			"tcp_port:" + port(s.Addr()),
			"uptime_in_seconds:" + strconv.FormatInt(int64(time.Since(s.started).Seconds()), 10),
		}},
		{"clients", []string{
			"connected_clients:" + strconv.Itoa(s.clients()),
			"maxclients:" + strconv.Itoa(s.cfg.Limits.MaxClients),
		}},
		{"persistence", []string{
			"aof_enabled:1",
			"aof_fsync:" + s.cfg.Fsync,
		}},
		{"stats", []string{
			"total_connections_received:" + strconv.FormatInt(s.stats.connections.Load(), 10),
			"total_commands_processed:" + strconv.FormatInt(s.stats.commands.Load(), 10),
			"rejected_connections:" + strconv.FormatInt(s.stats.rejected.Load(), 10),
			"total_error_replies:" + strconv.FormatInt(s.stats.errors.Load(), 10),
		}},
	}
	want := "default"
	if len(args) > 1 {
		want = strings.ToLower(args[1].Str())
	}
	var b strings.Builder
	for _, sec := range sections {
		if want != "default" && want != "all" && want != "everything" && want != sec.name {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + strings.ToUpper(sec.name[:1]) + sec.name[1:] + "\r\n")
		for _, l := range sec.lines {
			b.WriteString(l + "\r\n")
		}
	}
	c.w.bulk(b.String())
}

func port(addr string) string {
	return addr[strings.LastIndexByte(addr, ':')+1:]
}

// config is CONFIG GET pattern...: the few settings tools ask for.
func (c *conn) config(args []kv.Value) {
	if upper(args[1].Str()) != "GET" || len(args) < 3 {
		c.fail("ERR", "only CONFIG GET is supported")
		return
	}
	fsync := map[string]string{"always": "always", "never": "no"}[c.srv.cfg.Fsync]
	if fsync == "" {
		fsync = "everysec"
	}
	settings := [][2]string{
		{"appendfsync", fsync},
		{"appendonly", "yes"},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(c.srv.cfg.Limits.MaxClients)},
		{"save", ""},
		{"timeout", strconv.FormatInt(int64(c.srv.cfg.Limits.IdleTimeout.Seconds()), 10)},
	}
	var found [][2]string
	for _, kvp := range settings {
		for _, a := range args[2:] {
			if ok, _ := path.Match(strings.ToLower(a.Str()), kvp[0]); ok {
				found = append(found, kvp)
				break
			}
		}
	}
	c.w.dict(len(found))
	for _, f := range found {
		c.w.bulk(f[0])
		c.w.bulk(f[1])
	}
}

// flushdb is FLUSHDB [ASYNC|SYNC]: every public key and queue goes; the
// engine's state stays.
func (c *conn) flushdb(args []kv.Value) {
	if len(args) > 2 || (len(args) == 2 && !option(args[1], "ASYNC") && !option(args[1], "SYNC")) {
		c.failErr(errSyntax)
		return
	}
	_, err := c.srv.deps.Broker.Flush(c.ctx)
	c.okOrErr(err)
}
