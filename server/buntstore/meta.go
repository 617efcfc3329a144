package buntstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// meta is a queue's state, kept in the same transaction as every change to
// its messages so counts never drift from the messages themselves.
type meta struct {
	LastID    uint64        `json:"last_id"`
	Length    int64         `json:"length"`
	InFlight  int64         `json:"in_flight"`
	Status    broker.Status `json:"status"`
	Policy    broker.Policy `json:"policy"`
	Pushed    int64         `json:"pushed"`
	Delivered int64         `json:"delivered"`
	Acked     int64         `json:"acked"`
	Dead      int64         `json:"dead"`
	Created   int64         `json:"created"`
}

func newMeta(now int64) meta {
	return meta{Status: broker.StatusActive, Policy: broker.DefaultPolicy, Created: now}
}

// getMeta returns the queue's state; ok is false when the queue does not exist.
func getMeta(tx *buntdb.Tx, q string) (m meta, ok bool, err error) {
	v, err := tx.Get(metaKey(q))
	if errors.Is(err, buntdb.ErrNotFound) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := decodeMeta(v, &m); err != nil {
		return m, false, fmt.Errorf("queue %s state: %w", q, err)
	}
	return m, true, nil
}

// loadMeta returns the queue's state, a fresh one if it does not exist.
func loadMeta(tx *buntdb.Tx, q string, now int64) (meta, error) {
	m, ok, err := getMeta(tx, q)
	if err == nil && !ok {
		m = newMeta(now)
	}
	return m, err
}

func putMeta(tx *buntdb.Tx, q string, m meta) error {
	_, _, err := tx.Set(metaKey(q), m.encode(), nil)
	return err
}

// metaVersion marks the binary encoding of a queue's state; state written
// as JSON by earlier versions starts with '{' and is still read.
const metaVersion = 1

// Status and policy as stored.
var (
	statusCodes = []broker.Status{broker.StatusActive, broker.StatusPaused}
	policyCodes = []broker.Policy{broker.PolicyRoundRobin, broker.PolicyBroadcast}
)

// encode writes the state compactly: it is rewritten by every operation on
// the queue, so JSON's cost showed in the push path's profile.
func (m meta) encode() string {
	b := make([]byte, 0, 48)
	b = append(b, metaVersion, byte(slices.Index(statusCodes, m.Status)), byte(slices.Index(policyCodes, m.Policy)))
	b = binary.AppendUvarint(b, m.LastID)
	for _, v := range []int64{m.Length, m.InFlight, m.Pushed, m.Delivered, m.Acked, m.Dead, m.Created} {
		b = binary.AppendVarint(b, v)
	}
	return string(b)
}

func decodeMeta(v string, m *meta) error {
	if strings.HasPrefix(v, "{") {
		return json.Unmarshal([]byte(v), m)
	}
	if len(v) < 3 || v[0] != metaVersion || int(v[1]) >= len(statusCodes) || int(v[2]) >= len(policyCodes) {
		return errCorrupt
	}
	m.Status, m.Policy = statusCodes[v[1]], policyCodes[v[2]]
	b := []byte(v[3:])
	var n int
	if m.LastID, n = binary.Uvarint(b); n <= 0 {
		return errCorrupt
	}
	b = b[n:]
	for _, f := range []*int64{&m.Length, &m.InFlight, &m.Pushed, &m.Delivered, &m.Acked, &m.Dead, &m.Created} {
		if *f, n = binary.Varint(b); n <= 0 {
			return errCorrupt
		}
		b = b[n:]
	}
	return nil
}

func (m meta) info(name string) broker.QueueInfo {
	return broker.QueueInfo{
		Name:         name,
		Length:       m.Length,
		InFlight:     m.InFlight,
		Status:       m.Status,
		Policy:       m.Policy,
		LastID:       m.LastID,
		Pushed:       m.Pushed,
		Delivered:    m.Delivered,
		Acked:        m.Acked,
		DeadLettered: m.Dead,
		Created:      fromNanos(m.Created),
	}
}

// metaCache holds the metas one transaction touches, so that a transaction
// moving many messages reads and writes each queue's state once.
type metaCache struct {
	tx  *buntdb.Tx
	now int64
	m   map[string]*meta
}

func newMetaCache(tx *buntdb.Tx, now int64) *metaCache {
	return &metaCache{tx: tx, now: now, m: map[string]*meta{}}
}

func (c *metaCache) get(q string) (*meta, error) {
	if m, ok := c.m[q]; ok {
		return m, nil
	}
	m, err := loadMeta(c.tx, q, c.now)
	if err != nil {
		return nil, err
	}
	c.m[q] = &m
	return &m, nil
}

// known returns q's state as the transaction has it so far, or ok false
// when q does not exist; unlike get it creates nothing, and what it
// returns is written at the flush only once held.
func (c *metaCache) known(q string) (*meta, bool, error) {
	if m, ok := c.m[q]; ok {
		return m, true, nil
	}
	m, ok, err := getMeta(c.tx, q)
	if err != nil || !ok {
		return nil, false, err
	}
	return &m, true, nil
}

// hold makes m, from known, q's state in the cache, written at the flush.
func (c *metaCache) hold(q string, m *meta) { c.m[q] = m }

func (c *metaCache) flush() error {
	for q, m := range c.m {
		if err := putMeta(c.tx, q, *m); err != nil {
			return err
		}
	}
	return nil
}
