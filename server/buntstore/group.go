package buntstore

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tidwall/buntdb"
)

// MaxGroup is the most calls one group transaction holds.
const MaxGroup = 256

// group lets concurrent calls of one kind share a write transaction (a
// group commit): the first caller leads, runs every call waiting behind it
// in one buntdb transaction, answers them all and hands the lead to the
// first call that came in meanwhile. One transaction is one write of the
// file (and, under --fsync always, one fsync before any of them returns),
// and the queue states the calls share are read and written once, which
// is what concurrent pushes and hard gets spent most of their store time
// on. A call that fails undoes the whole group's transaction; then each
// call runs alone in a transaction of its own, as it would have without
// the group, so that one bad call answers only for itself.
type group struct {
	s *Store
	// gather makes a call that finds the group idle yield once before it
	// runs, so that calls just about to come join its transaction rather
	// than wait for it to end (requests from many connections come in
	// together and would otherwise mostly run one transaction each).
	gather  bool
	mu      sync.Mutex
	waiting []*groupCall
	busy    bool         // a leader is running a group
	shared  atomic.Int64 // calls answered from a transaction they shared
}

// groupCall is one call waiting in a group.
type groupCall struct {
	ctx context.Context
	// fn does the call's work in tx; st is shared by the group's calls and
	// flushed once after the last. A nil return is the call's success (its
	// results are fn's to keep); any error undoes the group.
	fn   func(tx *buntdb.Tx, st *groupState) error
	err  error
	lead bool // woken to lead the next group, not answered
	done chan struct{}
}

// groupState is what a group's calls share inside their transaction.
type groupState struct {
	metas *metaCache
}

// do runs fn as part of a group and returns its outcome. A call that finds
// no group running runs at once, alone, with nothing allocated for the
// group; only calls that come while a transaction runs wait to share one.
func (g *group) do(ctx context.Context, now int64, fn func(tx *buntdb.Tx, st *groupState) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		if g.gather {
			return g.gatherAndLead(ctx, now, fn)
		}
		err := g.s.runGroupTx(now, fn)
		g.handOff()
		return err
	}
	c := &groupCall{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.waiting = append(g.waiting, c)
	g.mu.Unlock()
	<-c.done
	if c.lead {
		g.lead(now)
	}
	return c.err
}

// gatherAndLead lets the other goroutines run once, then leads the calls
// that came meanwhile with fn first.
func (g *group) gatherAndLead(ctx context.Context, now int64, fn func(tx *buntdb.Tx, st *groupState) error) error {
	runtime.Gosched()
	self := &groupCall{ctx: ctx, fn: fn}
	g.mu.Lock()
	g.waiting = slices.Insert(g.waiting, 0, self)
	g.mu.Unlock()
	g.lead(now)
	return self.err
}

// lead takes the waiting calls (its own first among them), runs them in
// one transaction, passes the lead on and answers them.
func (g *group) lead(now int64) {
	g.mu.Lock()
	n := min(len(g.waiting), MaxGroup)
	calls := make([]*groupCall, n)
	copy(calls, g.waiting)
	rest := copy(g.waiting, g.waiting[n:])
	clear(g.waiting[rest:])
	g.waiting = g.waiting[:rest]
	g.mu.Unlock()

	g.run(calls, now)
	g.handOff()
	for _, c := range calls[1:] { // calls[0] is the leader's own
		close(c.done)
	}
}

// handOff wakes the first waiting call to lead the next group, or marks
// the group idle.
func (g *group) handOff() {
	g.mu.Lock()
	if len(g.waiting) == 0 {
		g.busy = false
		g.mu.Unlock()
		return
	}
	next := g.waiting[0]
	next.lead = true
	g.mu.Unlock()
	close(next.done)
}

// run runs the calls in one transaction or, if that fails, each alone.
func (g *group) run(calls []*groupCall, now int64) {
	live := calls[:0:0]
	for _, c := range calls {
		if c.err = c.ctx.Err(); c.err == nil {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	err := g.s.runGroupTx(now, func(tx *buntdb.Tx, st *groupState) error {
		for _, c := range live {
			if err := c.fn(tx, st); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && len(live) > 1 {
		g.shared.Add(int64(len(live)))
	}
	if err == nil || len(live) == 1 {
		for _, c := range live {
			c.err = err
		}
		return
	}
	for _, c := range live {
		c.err = g.s.runGroupTx(now, c.fn)
	}
}

// runGroupTx runs fn in one write transaction with a fresh group state,
// flushed after fn.
func (s *Store) runGroupTx(now int64, fn func(tx *buntdb.Tx, st *groupState) error) error {
	return mapErr(s.db.Update(func(tx *buntdb.Tx) error {
		st := &groupState{metas: newMetaCache(tx, now)}
		if err := fn(tx, st); err != nil {
			return err
		}
		return st.metas.flush()
	}))
}
