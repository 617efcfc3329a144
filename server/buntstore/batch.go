package buntstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/buntdb"

	"github.com/tabreduce/tabreduce/server/broker"
)

// A leased batch (layout 4) is the messages one lease call took, kept in
// flight as ONE record with the lease fields they share:
//
//	l:{queue}\x00{first}             the batch (first: its first message's id)
//	b:{deadline}{queue}\x00{first}   its deadline index entry ("")
//
// so that a lease of n messages writes two keys besides deleting the n
// ready ones, and an ack of the n deletes two. A member's lease id names
// first (batchLeaseID), so the record is one look-up away.
//
// An ack of every member deletes the batch; of at least as many members as
// it leaves, rewrites it with the rest; of fewer, breaks it up (unbatch):
// the rest go in flight one by one, as layout 3 keeps leases (an f: record
// each and one d: entry for them all), which bounds what partial acks
// rewrite to once the batch. Every other change of a member (a nack, an
// extend, a release, a commit, a delete by id) breaks its batch up first
// and is then the change it is for a lease of layout 3. The reaper and the
// lease recovery return whole batches and rewrite a batch their limit cuts
// short with the members left.
//
// A lease whose first message still heads a batch (the message left it and
// was leased again before the batch ended) goes in flight one by one.

// maxBatchBytes bounds a batch record: a lease of more goes in flight one
// message at a time.
const maxBatchBytes = 1 << 20

// batchVersion marks the encoding of a batch record.
const batchVersion = 1

// batch is a leased batch as stored. recs are the members' records without
// the shared fields (deadline 0, owner ""), in their encoding; ids ascend.
type batch struct {
	deadline int64
	owner    string
	ids      []uint64
	recs     []string
}

func batchKey(q string, first uint64) string { return batchPrefix + q + nameEnd + hex16(first) }

// encode writes the batch: version, deadline, owner, count, then each
// member's id and record, length-prefixed.
func (b *batch) encode() string {
	n := 16 + len(b.owner)
	for _, r := range b.recs {
		n += 20 + len(r)
	}
	e := make([]byte, 0, n)
	e = append(e, batchVersion)
	e = binary.AppendVarint(e, b.deadline)
	e = binary.AppendUvarint(e, uint64(len(b.owner)))
	e = append(e, b.owner...)
	e = binary.AppendUvarint(e, uint64(len(b.ids)))
	for i, id := range b.ids {
		e = binary.AppendUvarint(e, id)
		e = binary.AppendUvarint(e, uint64(len(b.recs[i])))
		e = append(e, b.recs[i]...)
	}
	return string(e)
}

// decodeBatch reads a batch record; its members' records are slices of v,
// decoded when needed (member).
func decodeBatch(v string) (batch, error) {
	var b batch
	if len(v) < 1 || v[0] != batchVersion {
		return b, errCorrupt
	}
	i := 1
	d, i, ok1 := varintAt(v, i)
	ol, i, ok2 := uvarintAt(v, i)
	if !ok1 || !ok2 || ol > uint64(len(v)-i) {
		return b, errCorrupt
	}
	b.deadline, b.owner = d, v[i:i+int(ol)]
	i += int(ol)
	n, i, ok := uvarintAt(v, i)
	if !ok || n == 0 || n > maxEntryIDs || n > uint64(len(v)-i)/2 {
		return b, errCorrupt
	}
	b.ids, b.recs = make([]uint64, n), make([]string, n)
	for j := range b.ids {
		id, k, ok1 := uvarintAt(v, i)
		rl, k, ok2 := uvarintAt(v, k)
		if !ok1 || !ok2 || rl > uint64(len(v)-k) || j > 0 && id <= b.ids[j-1] {
			return b, errCorrupt
		}
		b.ids[j], b.recs[j] = id, v[k:k+int(rl)]
		i = k + int(rl)
	}
	if i != len(v) {
		return b, errCorrupt
	}
	return b, nil
}

// getBatch reads the batch at l:{q}\x00{first}; ok is false if there is none.
func getBatch(tx *buntdb.Tx, q string, first uint64) (b batch, ok bool, err error) {
	v, err := tx.Get(batchKey(q, first))
	if errors.Is(err, buntdb.ErrNotFound) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	b, err = decodeBatch(v)
	if err != nil {
		return b, false, fmt.Errorf("%s: %w", truncate(batchKey(q, first), 60), err)
	}
	return b, true, nil
}

// find returns the index of member id, or -1.
func (b *batch) find(id uint64) int {
	j := sort.Search(len(b.ids), func(j int) bool { return b.ids[j] >= id })
	if j < len(b.ids) && b.ids[j] == id {
		return j
	}
	return -1
}

// holds reports whether member j is the hand-out ref names.
func (b *batch) holds(j int, ref leaseRef) bool {
	seq, created, ok := recordHead(b.recs[j])
	return ok && seq == ref.seq && created == ref.created
}

// member decodes member j's record with the batch's lease fields.
func (b *batch) member(j int) (record, error) {
	r, err := decodeRecord(b.recs[j])
	if err != nil {
		return r, fmt.Errorf("leased batch, message %d: %w", b.ids[j], err)
	}
	r.deadline, r.owner = b.deadline, b.owner
	return r, nil
}

// keep returns the batch with only the members keep says.
func (b *batch) keep(keep func(j int) bool) batch {
	out := batch{deadline: b.deadline, owner: b.owner}
	for j := range b.ids {
		if keep(j) {
			out.ids, out.recs = append(out.ids, b.ids[j]), append(out.recs, b.recs[j])
		}
	}
	return out
}

// leaseBatch puts leased messages in flight as one batch, all with the
// lease fields of got[0].rec (deadline, owner), and reports whether it did:
// it does not for a single message, past maxBatchBytes, or when got[0]
// still heads a batch. got's records already carry their lease fields.
func leaseBatch(tx *buntdb.Tx, q string, got []readyMsg) (bool, error) {
	if len(got) < 2 {
		return false, nil
	}
	size := 0
	for i := range got {
		size += got[i].rec.size()
	}
	if size > maxBatchBytes {
		return false, nil
	}
	first := got[0].id
	if _, err := tx.Get(batchKey(q, first)); err == nil || !errors.Is(err, buntdb.ErrNotFound) {
		return false, err
	}
	// The encoding of batch.encode, written at once into the string that
	// is stored: no member's record is a string of its own, and the record
	// is not copied from a buffer.
	lead := &got[0].rec
	var e strings.Builder
	e.Grow(32 + len(lead.owner) + size + 20*len(got))
	var num [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) { e.Write(binary.AppendUvarint(num[:0], v)) }
	e.WriteByte(batchVersion)
	e.Write(binary.AppendVarint(num[:0], lead.deadline))
	uvarint(uint64(len(lead.owner)))
	e.WriteString(lead.owner)
	uvarint(uint64(len(got)))
	var rec []byte
	for i := range got {
		r := got[i].rec
		r.deadline, r.owner = 0, ""
		rec = r.appendTo(rec[:0])
		uvarint(got[i].id)
		uvarint(uint64(len(rec)))
		e.Write(rec)
	}
	if _, _, err := tx.Set(batchKey(q, first), e.String(), nil); err != nil {
		return false, err
	}
	_, _, err := tx.Set(timeKey(batchIndexPrefix, lead.deadline, q, first), "", nil)
	return err == nil, err
}

// putBatch rewrites the batch at first's key as b (its deadline index
// entry stays as it is).
func putBatch(tx *buntdb.Tx, q string, first uint64, b *batch) error {
	_, _, err := tx.Set(batchKey(q, first), b.encode(), nil)
	return err
}

// dropBatch deletes the batch at first's key and its deadline index entry.
func dropBatch(tx *buntdb.Tx, q string, first uint64, b *batch) error {
	if _, err := tx.Delete(batchKey(q, first)); err != nil {
		return err
	}
	_, err := tx.Delete(timeKey(batchIndexPrefix, b.deadline, q, first))
	if errors.Is(err, buntdb.ErrNotFound) {
		return nil
	}
	return err
}

// breakUp replaces the batch at first's key with its members in flight one
// by one, leased as they were (layout 3: an f: record each, one d: entry).
func breakUp(tx *buntdb.Tx, q string, first uint64, b *batch) error {
	if err := dropBatch(tx, q, first, b); err != nil {
		return err
	}
	return scatter(tx, q, b)
}

// scatter puts b's members in flight one by one.
func scatter(tx *buntdb.Tx, q string, b *batch) error {
	for j, id := range b.ids {
		r, err := b.member(j)
		if err != nil {
			return err
		}
		if err := putFlight(tx, q, id, &r); err != nil {
			return err
		}
	}
	return indexDeadlines(tx, q, b.deadline, b.ids)
}

// unbatch breaks up the batch that holds the lease ref names, if one
// does, so that the lease is an f: record like any other.
func unbatch(tx *buntdb.Tx, q string, ref leaseRef) error {
	if !ref.batched {
		return nil
	}
	b, ok, err := getBatch(tx, q, ref.first)
	if err != nil || !ok {
		return err
	}
	if j := b.find(ref.id); j >= 0 && b.holds(j, ref) {
		return breakUp(tx, q, ref.first, &b)
	}
	return nil
}

// unbatchID breaks up the batch of q that holds message id, if one does,
// and reports whether one did. Nothing names the batch, so q's batches are
// searched: a delete by id of a leased message is rare, and q's batches
// are bounded by its messages in flight.
func unbatchID(tx *buntdb.Tx, q string, id uint64) (bool, error) {
	lo, hi := queueRange(batchPrefix, q)
	hi = min(hi, batchKey(q, id)+"\x00") // a batch starts at or before its members
	keys, vals, err := scan(tx, lo, hi, 0)
	if err != nil {
		return false, err
	}
	for i, k := range keys {
		b, err := decodeBatch(vals[i])
		if err != nil {
			return false, fmt.Errorf("%s: %w", truncate(k, 60), err)
		}
		if b.find(id) < 0 {
			continue
		}
		_, first, err := parseMessageKey(k)
		if err != nil {
			return false, err
		}
		return true, breakUp(tx, q, first, &b)
	}
	return false, nil
}

// ackBatch acks the leases refs name (by index into refs) that batch
// first holds and returns the indexes of those it does not hold, for the
// caller to look for one by one.
func ackBatch(tx *buntdb.Tx, q string, first uint64, refs []leaseRef, idx []int) (acked int, rest []int, err error) {
	b, ok, err := getBatch(tx, q, first)
	if err != nil || !ok {
		return 0, idx, err
	}
	taken := make([]bool, len(b.ids))
	for _, i := range idx {
		j := b.find(refs[i].id)
		if j < 0 || taken[j] || !b.holds(j, refs[i]) {
			rest = append(rest, i)
			continue
		}
		taken[j] = true
		acked++
	}
	return acked, rest, settleBatch(tx, q, first, &b, taken, acked)
}

// settleBatch ends the acks of acked members of batch first (those taken
// marks): it deletes the batch if none is left, rewrites it with the rest
// if at least as many were acked as are left, and else breaks it up.
func settleBatch(tx *buntdb.Tx, q string, first uint64, b *batch, taken []bool, acked int) error {
	left := len(b.ids) - acked
	switch {
	case acked == 0:
		return nil
	case left == 0:
		return dropBatch(tx, q, first, b)
	case acked >= left:
		kept := b.keep(func(j int) bool { return !taken[j] })
		return putBatch(tx, q, first, &kept)
	}
	kept := b.keep(func(j int) bool { return !taken[j] })
	if err := dropBatch(tx, q, first, b); err != nil {
		return err
	}
	return scatter(tx, q, &kept)
}

// ackTx acks leases of q and returns how many it acked and the lease ids
// that name no live lease, in their order.
func ackTx(tx *buntdb.Tx, q string, leaseIDs []string) (int64, []string, error) {
	refs := make([]leaseRef, len(leaseIDs))
	bad := make([]bool, len(leaseIDs))
	var single []int
	var firsts []uint64
	byFirst := map[uint64][]int{}
	for i, l := range leaseIDs {
		ref, ok := parseLeaseID(l)
		switch {
		case !ok:
			bad[i] = true
		case ref.batched:
			if _, seen := byFirst[ref.first]; !seen {
				firsts = append(firsts, ref.first)
			}
			byFirst[ref.first] = append(byFirst[ref.first], i)
		default:
			single = append(single, i)
		}
		refs[i] = ref
	}
	var acked int64
	for _, first := range firsts {
		n, rest, err := ackBatch(tx, q, first, refs, byFirst[first])
		if err != nil {
			return 0, nil, err
		}
		acked += int64(n)
		single = append(single, rest...)
	}
	for _, i := range single {
		_, _, err := takeFlight(tx, q, refs[i], leaseIDs[i])
		if errors.Is(err, broker.ErrLeaseNotFound) {
			bad[i] = true
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		acked++
	}
	var unknown []string
	for i, l := range leaseIDs {
		if bad[i] {
			unknown = append(unknown, l)
		}
	}
	return acked, unknown, nil
}

// reapBatches returns the members of up to limit due batches' members to
// their queues, as reapLease does a lease of layout 3, and counts them.
func reapBatches(tx *buntdb.Tx, mc *metaCache, p broker.ReapParams, now int64, limit int, res *broker.ReapResult) error {
	keys, _, err := scan(tx, batchIndexPrefix, batchIndexPrefix+hex16(uint64(now)+1), limit+1)
	if err != nil {
		return err
	}
	done := 0
	for _, k := range keys {
		if done == limit {
			res.More = true
			return nil
		}
		at, q, first, err := parseTimeKey(k)
		if err != nil {
			return err
		}
		b, ok, err := getBatch(tx, q, first)
		if err != nil {
			return err
		}
		if !ok || b.deadline != at { // acked, broken up or replaced since
			if _, err := tx.Delete(k); err != nil {
				return err
			}
			continue
		}
		n, err := returnBatch(tx, mc, q, first, &b, limit-done, func(id uint64, r *record) error {
			_, err := expireLease(tx, mc, p, q, id, r, now, res)
			return err
		})
		if err != nil {
			return err
		}
		done += n
		if n < len(b.ids) {
			res.More = true
			return nil
		}
	}
	return nil
}

// returnBatch hands up to limit members of batch first to fn (which takes
// each out of flight) and ends the batch, or rewrites it with the members
// left; it returns how many it handed over.
func returnBatch(tx *buntdb.Tx, mc *metaCache, q string, first uint64, b *batch, limit int, fn func(id uint64, r *record) error) (int, error) {
	n := min(len(b.ids), limit)
	for j := range n {
		r, err := b.member(j)
		if err != nil {
			return 0, err
		}
		if err := fn(b.ids[j], &r); err != nil {
			return 0, err
		}
	}
	if n == len(b.ids) {
		return n, dropBatch(tx, q, first, b)
	}
	kept := b.keep(func(j int) bool { return j >= n })
	return n, putBatch(tx, q, first, &kept)
}

// recoverBatches returns the batches of owners that are gone to their
// queues, up to limit members, and counts them.
func (s *Store) recoverBatches(tx *buntdb.Tx, mc *metaCache, limit int, res *broker.RecoverResult) (int, error) {
	keys, vals, err := scan(tx, batchPrefix, prefixEnd(batchPrefix), 0)
	if err != nil {
		return 0, err
	}
	done := 0
	for i, k := range keys {
		b, err := decodeBatch(vals[i])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", truncate(k, 60), err)
		}
		if s.owned.isAlive(b.owner) {
			continue
		}
		if done == limit {
			res.More = true
			return done, nil
		}
		q, first, err := parseMessageKey(k)
		if err != nil {
			return 0, err
		}
		n, err := returnBatch(tx, mc, q, first, &b, limit-done, func(id uint64, r *record) error {
			res.Released[q]++
			return toReady(tx, mc, q, id, r)
		})
		if err != nil {
			return 0, err
		}
		done += n
		if n < len(b.ids) {
			res.More = true
			return done, nil
		}
	}
	return done, nil
}

// deleteBatches deletes q's batches and counts their members.
func deleteBatches(tx *buntdb.Tx, q string) (int64, error) {
	lo, hi := queueRange(batchPrefix, q)
	keys, vals, err := scan(tx, lo, hi, 0)
	if err != nil {
		return 0, err
	}
	var n int64
	for i, k := range keys {
		b, err := decodeBatch(vals[i])
		if err != nil {
			return n, fmt.Errorf("%s: %w", truncate(k, 60), err)
		}
		_, first, err := parseMessageKey(k)
		if err != nil {
			return n, err
		}
		if err := dropBatch(tx, q, first, &b); err != nil {
			return n, err
		}
		n += int64(len(b.ids))
	}
	return n, nil
}

// recordHead reads a record's lease sequence and creation time without
// decoding the rest (an ack needs no more).
func recordHead(s string) (seq, created int64, ok bool) {
	if len(s) < 2 || s[0] != recordVersion && s[0] != recordV1 {
		return 0, 0, false
	}
	i := 2
	var oks [5]bool
	_, i, oks[0] = varintAt(s, i)  // count
	_, i, oks[1] = uvarintAt(s, i) // attempts
	created, i, oks[2] = varintAt(s, i)
	_, i, oks[3] = varintAt(s, i) // expires
	seq, _, oks[4] = varintAt(s, i)
	return seq, created, oks == [5]bool{true, true, true, true, true}
}

// uvarintAt decodes a uvarint of s at i as binary.Uvarint does, and
// returns it with the index after it; ok is false if there is none.
func uvarintAt(s string, i int) (v uint64, next int, ok bool) {
	var shift uint
	for n := 0; n < binary.MaxVarintLen64 && i < len(s); n++ {
		c := s[i]
		i++
		if c < 0x80 {
			if n == binary.MaxVarintLen64-1 && c > 1 {
				return 0, i, false
			}
			return v | uint64(c)<<shift, i, true
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, i, false
}

// varintAt is uvarintAt for a zig-zag varint (binary.Varint).
func varintAt(s string, i int) (int64, int, bool) {
	u, next, ok := uvarintAt(s, i)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x, next, ok
}
