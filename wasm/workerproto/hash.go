package workerproto

import (
	"crypto/sha256"
	"encoding/binary"
)

// ResultHash is the canonical output hash of a task's result: the sha256 of
// its partitions in order, each as a u32 little-endian length followed by
// its bytes (each partition encoded as a RESULTS frame's `bytes` field).
// Two runs of a task agree if and only if their hashes are equal: the ABI
// makes a module deterministic and the protocol fixes the partitioning and
// the order of the pairs, so an honest worker's output is the same bytes
// everywhere. The task id, the elapsed time and the counters are not part
// of it. docs/PROTOCOL.md defines it for other implementations.
func ResultHash(res Result) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, p := range res.Partitions {
		binary.LittleEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
