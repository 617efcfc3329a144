package abi

import "hash/fnv"

// Partition returns the reduce partition of key among r: FNV-1a-32 of the
// key modulo r. It is part of the contract between a worker, which splits a
// map task's output by it, and the server, which checks that every pair of
// a result's stream p has Partition(key, R) == p: every host must agree.
func Partition(key []byte, r int) int {
	if r <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % uint32(r))
}
