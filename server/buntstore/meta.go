package buntstore

import (
	"encoding/json"
	"errors"
	"fmt"

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
	return meta{Status: broker.StatusActive, Policy: broker.PolicyRoundRobin, Created: now}
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
	if err := unmarshalMeta(v, &m); err != nil {
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
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, _, err = tx.Set(metaKey(q), string(b), nil)
	return err
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

func (c *metaCache) flush() error {
	for q, m := range c.m {
		if err := putMeta(c.tx, q, *m); err != nil {
			return err
		}
	}
	return nil
}

func unmarshalMeta(v string, m *meta) error { return json.Unmarshal([]byte(v), m) }
