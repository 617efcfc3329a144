package broker

import "time"

// KVCond is the condition a KVSwap entry puts on its key's current value.
type KVCond uint8

// KVSwap conditions.
const (
	KVAlways    KVCond = iota // no condition
	KVIfAbsent                // the key must not exist (or have expired)
	KVIfPresent               // the key must exist
	KVIfEqual                 // the key must hold exactly Equal (Data and Raw)
)

// KVSwapOp is the change a KVSwap entry makes.
type KVSwapOp uint8

// KVSwap changes.
const (
	KVPut    KVSwapOp = iota // store Value, expiring after TTL (zero: never) or, with KeepTTL, when the key did
	KVRemove                 // delete the key
	KVExpire                 // keep the value, expire it after TTL (zero: never); nothing on a missing key
	KVCheck                  // change nothing: the entry is a condition only
)

// KVSwapEntry is one key of a KVSwap: a condition and a change.
type KVSwapEntry struct {
	Key     string
	If      KVCond
	Equal   KVValue // with KVIfEqual
	Op      KVSwapOp
	Value   KVValue       // with KVPut
	TTL     time.Duration // with KVPut and KVExpire
	KeepTTL bool          // with KVPut: keep the key's expiry (none if it was absent)
}

// KVSwapParams are the arguments of Store.KVSwap. Conditions are checked
// against the values before the call; changes are applied in order, so a key
// named twice ends with its last change.
//
// The method is shaped so that a shared store can run it as one script on
// the server (check every key, then write every key), which keeps it atomic
// across processes.
type KVSwapParams struct {
	Entries []KVSwapEntry
}

// KVSwapResult is what one KVSwap did.
type KVSwapResult struct {
	Applied bool       // every condition held and every change was made
	Prev    []*KVValue // each entry's value before the call (nil: absent), applied or not
}
