package engine

import (
	"net/netip"
)

// Whom the engine believes. A worker that connected with the operator's
// token, or runs in the server's process, is trusted: its results are
// committed as they come, outrank any number of untrusted workers that
// agree on something else, and it is never flagged. Everyone else is a
// volunteer the engine cannot tell from a cheat that opened many sessions
// (sybils), so:
//
//   - it believes at most MaxWorkerSlots of the slots a worker declares,
//     so one worker cannot take every task (its credit, the tasks it may
//     hold, follows from the slots);
//   - replicas of one task go to workers on distinct networks (/24 for
//     IPv4, /48 for IPv6) and distinct sessions, so that sybils on one
//     network cannot agree with themselves; where every connected worker
//     that could run a replica shares the network of the results held, a
//     replica on the same network is accepted as weaker evidence (counted
//     in the job's same_network) rather than waiting for a network that
//     may never come;
//   - a disagreement is settled by the server's own run, never by a vote
//     that two sybils could win;
//   - a failure it reports is confirmed by the server before it counts
//     (failure.go), and a worker whose failures the server contradicts is
//     throttled, then refused;
//   - a worker caught taints its network: under adaptive every later
//     result from it is checked, so a cheat that comes back under another
//     name has no standing to hide behind and is caught at its first
//     forgery; a second worker caught at one address gets the address
//     refused whatever a worker there calls itself. (One address may be
//     one machine's honest workers too, or a NAT's: the first catch does
//     not refuse them.)

// networkOf is the network a worker's address belongs to for the rule that
// replicas run on distinct networks: the /24 of an IPv4 address, the /48 of
// an IPv6 one. An address that is not an IP (the in-process worker) is its
// own network.
func networkOf(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(addr); err2 == nil {
			ip = ap.Addr()
		} else {
			return addr
		}
	}
	ip = ip.Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return addr
	}
	return p.String()
}

// hostOf is the address part of a worker's address, the key of a ban by
// address.
func hostOf(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().String()
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		return ip.Unmap().String()
	}
	return addr
}

// addrBanAfter is how many workers caught at one address refuse it.
const addrBanAfter = 2

// DefaultMaxWorkerSlots is Config.MaxWorkerSlots's default.
const DefaultMaxWorkerSlots = 16

// slotsFor is how many of the slots a worker declares the engine believes.
func (e *Engine) slotsFor(p Peer, declared uint16) int {
	n := int(declared)
	if !p.Trusted {
		n = min(n, e.cfg.MaxWorkerSlots)
	}
	return max(n, 1)
}

// otherNetworkLocked reports whether a connected worker that has not run t
// and is on a network none of t's copies ran on could run a replica of it:
// then a replica on the same network is not good enough and the task waits
// for that worker. A trusted worker counts as another network. e.mu held.
func (e *Engine) otherNetworkLocked(t *task) bool {
	if e.cfg.SameNetworkReplicas {
		return false
	}
	for _, s := range e.sessions {
		if t.ranOn(s) || s.standing.Flagged || s.throttled {
			continue
		}
		if s.peer.Trusted || !t.ranOnNetwork(s.net) {
			return true
		}
	}
	return false
}

// ranOnNetwork reports whether a worker of network n ran a copy of t.
func (t *task) ranOnNetwork(n string) bool {
	for _, s := range t.ran {
		if s.net == n {
			return true
		}
	}
	return false
}

// taintedLocked reports whether a worker on s's network was caught: every
// result from that network is then checked. e.mu held.
func (e *Engine) taintedLocked(s *session) bool { return !s.peer.Trusted && e.tainted[s.net] > 0 }
