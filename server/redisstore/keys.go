package redisstore

import (
	"strings"
)

// Key layout (version 1). Every key starts with the store's prefix and a
// hash tag, so that Redis Cluster keeps whatever one operation touches in
// one slot:
//
//	{P}:{g<group>}:m:<queue>    HASH  queue state (meta)
//	{P}:{g<group>}:r:<queue>    ZSET  ready message ids (score: the id)
//	{P}:{g<group>}:b:<queue>    HASH  id → message record (cmsgpack)
//	{P}:{g<group>}:f:<queue>    ZSET  leased and delayed ids (score: deadline, µs)
//	{P}:{g<group>}:x:<queue>    ZSET  ready ids with a TTL (score: expiry, µs)
//	{P}:{g<group>}:e            HASH  record key → value (records of the group)
//	{P}:{g<group>}:ei           ZSET  record keys, for prefix scans (lex)
//	{P}:{g<group>}:ob           HASH  outbox: parts of commits for other slots
//	{P}:{g<group>}:obz          ZSET  outbox ids (score: time written, µs)
//	{P}:{g<group>}:obd          ZSET  outbox ids applied here (score: µs)
//	{P}:{kv}:k:<key>            STRING key/value entry: type byte + data
//	{P}:{kv}:ki                 ZSET  every key/value key, for prefix scans
//	{P}:{kv}:kx                 ZSET  keys with a TTL (score: expiry, µs)
//	{P}:{reg}:q                 ZSET  every queue name (score: last hint, ms)
//	{P}:{reg}:due               ZSET  queues with a deadline or expiry (score: µs)
//	{P}:{reg}:own               ZSET  lease owners (score: alive until, µs)
//	{P}:{reg}:oq:<owner>        SET   queues an owner has leased from
//	{P}:{reg}:eg                ZSET  groups holding records (score: last hint, ms)
//	{P}:{reg}:obt               ZSET  groups holding outbox entries (score: ms)
//	{P}:{reg}:layout            STRING layoutVersion
//	{P}:ev                      pub/sub channel of change events
//
// The group of a queue name or record key (Group) decides its slot. A
// name or key follows its hash tag whole, so no character of it is ever
// read as a separator; only the group inside the braces is escaped.
const layoutVersion = "1"

// DefaultPrefix is the key prefix when the URL names none.
const DefaultPrefix = "tabreduce"

const deadSuffix = ".dead"

// Group returns the locality group of a queue name or record key: the
// things one store operation touches together share it, and with it one
// Redis Cluster slot. A trailing ".dead" (a dead-letter queue) is dropped
// first, so a queue and its dead-letter queue are one group. A name with
// a '/' (the engine's internal names: "job/ID/map", "jobtask/ID/map/3")
// groups by its second segment (the job's id); a name without one is its
// own group.
func Group(name string) string {
	for strings.HasSuffix(name, deadSuffix) {
		name = name[:len(name)-len(deadSuffix)]
	}
	i := strings.IndexByte(name, '/')
	if i < 0 {
		return name
	}
	rest := name[i+1:]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// prefixGroup returns the one group every record key with prefix is in,
// when the prefix names it: it holds a complete second segment ("a/G/…").
// A ".dead" suffix never contains a '/', so dropping one never reaches the
// segment, and every key with the prefix has the same group.
func prefixGroup(prefix string) (string, bool) {
	i := strings.IndexByte(prefix, '/')
	if i < 0 {
		return "", false
	}
	rest := prefix[i+1:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// escapeTag makes text safe inside a hash tag: Redis ends a tag at the
// first '}', so braces (and the escape character) are percent-encoded.
func escapeTag(s string) string {
	if !strings.ContainsAny(s, "{}%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		case '%':
			b.WriteString("%25")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// keys builds the store's key names under one prefix.
type keys struct {
	prefix string
}

// tag is the slot-deciding part of a group's keys, "{P}:{g<group>}".
func (k keys) tag(group string) string { return k.prefix + ":{g" + escapeTag(group) + "}" }

// queue returns a queue's five keys in the order the scripts expect them
// (m, r, b, f, x).
func (k keys) queue(name string) []string {
	t := k.tag(Group(name))
	return []string{t + ":m:" + name, t + ":r:" + name, t + ":b:" + name, t + ":f:" + name, t + ":x:" + name}
}

// leaseReply is where the reply of one lease request is kept, in its
// queue's slot.
func (k keys) leaseReply(name, req string) string { return k.tag(Group(name)) + ":lr:" + req }

func (k keys) meta(name string) string { return k.tag(Group(name)) + ":m:" + name }

// records returns a group's record hash and index.
func (k keys) records(group string) []string {
	t := k.tag(group)
	return []string{t + ":e", t + ":ei"}
}

// outbox returns the outbox hash, its time index and the set of applied
// outbox ids of the slot with tag t.
func outbox(t string) []string { return []string{t + ":ob", t + ":obz", t + ":obd"} }

func (k keys) kvTag() string               { return k.prefix + ":{kv}" }
func (k keys) kvValuePrefix() string       { return k.kvTag() + ":k:" }
func (k keys) kvIndex() []string           { return []string{k.kvTag() + ":ki", k.kvTag() + ":kx"} }
func (k keys) reg(name string) string      { return k.prefix + ":{reg}:" + name }
func (k keys) queues() string              { return k.reg("q") }
func (k keys) due() string                 { return k.reg("due") }
func (k keys) owners() string              { return k.reg("own") }
func (k keys) ownerQueues(o string) string { return k.reg("oq:" + o) }
func (k keys) recordGroups() string        { return k.reg("eg") }
func (k keys) outboxGroups() string        { return k.reg("obt") }
func (k keys) layout() string              { return k.reg("layout") }
func (k keys) channel() string             { return k.prefix + ":ev" }
