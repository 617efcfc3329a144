package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/tabreduce/tabreduce/server/broker"
)

// What a catch leaves in the store, beside the caught worker's ban (ban/HASH,
// shared.go), so that a cheat gains nothing by coming back through another
// server of the service (or after a restart):
//
//   - caught/ADDR/KEY, one record per worker caught at an address: at
//     addrBanAfter of them the address is refused, whichever servers caught
//     them. Every server counts them when an untrusted worker says hello.
//   - taint/net/NET, one record per network a caught worker was on: under
//     adaptive every result from that network is checked on every server.
//     A server reads the one for a worker's network at its hello, and all
//     of them each round of the sharer (for workers already connected).
//
// What stays with the session: a worker's probation (the results it has
// had agreed) and its failures the server contradicted. A worker that comes
// back, here or elsewhere, starts them again, which costs it checks rather
// than sparing it any: probation starts again, and the contradicted
// failures that throttle and then flag a worker count per session on one
// server too.

// Record prefixes of catches.
const (
	catchPrefix = "caught/"
	taintPrefix = "taint/net/" // every network in one record group: one read a round
)

// hashName is the record key part standing for an address, a network or a
// ban key: fixed length, no '/'.
func hashName(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

func catchesOf(host string) string     { return catchPrefix + hashName(host) + "/" }
func catchKey(host, ban string) string { return catchesOf(host) + hashName(ban) }
func taintKey(net string) string       { return taintPrefix + hashName(net) }

// catchRecord is a caught worker's address and ban key, as stored.
type catchRecord struct {
	Addr string `json:"addr"`
	Key  string `json:"key"`
}

// taintRecord is a tainted network, as stored.
type taintRecord struct {
	Net string `json:"net"`
}

// recordCatch stores a catch at host, of the worker with ban key ban, on
// network net.
func (e *Engine) recordCatch(ctx context.Context, host, ban, net string) {
	c, _ := json.Marshal(catchRecord{Addr: host, Key: ban})
	t, _ := json.Marshal(taintRecord{Net: net})
	if err := e.putRecords(ctx, broker.Record{Key: catchKey(host, ban), Value: c}); err != nil {
		e.log.Error("record a caught worker's address", "err", err)
	}
	if err := e.putRecords(ctx, broker.Record{Key: taintKey(net), Value: t}); err != nil {
		e.log.Error("record a caught worker's network", "err", err)
	}
}

// readCatches brings what this server knows of catches at p's address and
// on its network up to what the store says, before the worker's session
// starts. A store that cannot be read leaves what the server knew.
func (e *Engine) readCatches(ctx context.Context, p Peer) {
	if p.Trusted {
		return
	}
	host, net := hostOf(p.RemoteAddr), networkOf(p.RemoteAddr)
	n := 0
	err := e.scanRecords(ctx, catchesOf(host), func(r broker.Record) error {
		var c catchRecord
		if json.Unmarshal(r.Value, &c) == nil && c.Addr == host && catchKey(host, c.Key) == r.Key {
			n++
		}
		return nil
	})
	if err != nil && !errors.Is(err, broker.ErrRecordNotFound) {
		return
	}
	tainted := false
	if b, err := e.q.RecordGet(ctx, taintKey(net)); err == nil {
		var t taintRecord
		tainted = json.Unmarshal(b, &t) == nil && t.Net == net
	}
	e.mu.Lock()
	e.caughtAt[host] = max(e.caughtAt[host], n)
	if tainted {
		e.tainted[net] = max(e.tainted[net], 1)
	}
	e.mu.Unlock()
}

// readTaints brings the tainted networks up to what the store says (the
// sharer's round: a network tainted on another server is checked here too,
// for the workers already connected).
func (e *Engine) readTaints(ctx context.Context) {
	var nets []string
	_ = e.scanRecords(ctx, taintPrefix, func(r broker.Record) error {
		var t taintRecord
		if json.Unmarshal(r.Value, &t) == nil && taintKey(t.Net) == r.Key {
			nets = append(nets, t.Net)
		}
		return nil
	})
	e.mu.Lock()
	for _, n := range nets {
		e.tainted[n] = max(e.tainted[n], 1)
	}
	e.mu.Unlock()
}
