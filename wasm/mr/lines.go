package mr

import "bytes"

// ForEachLine calls fn for every line of a map chunk, without its newline,
// with the line's byte offset within the job's whole input (ChunkOffset plus
// its position in the chunk) — a stable id for the line. It stops at the
// first error fn returns. Over the chunk a map call was given, it tells the
// host how far the call has got (abi.ImportProgress) as it goes.
func ForEachLine(chunk []byte, fn func(line []byte, offset uint64) error) error {
	base := ChunkOffset()
	metered := len(chunk) == callMeter.total
	for pos := 0; pos < len(chunk); {
		end := bytes.IndexByte(chunk[pos:], '\n')
		next := pos + end + 1
		if end < 0 {
			end, next = len(chunk)-pos, len(chunk)
		}
		if err := fn(chunk[pos:pos+end], base+uint64(pos)); err != nil {
			return err
		}
		pos = next
		if metered {
			callMeter.at(pos)
		}
	}
	return nil
}

// Consumed tells the host that done bytes of chunk, the chunk a map call was
// given, are consumed: the progress report of a Map that scans its chunk
// itself rather than through ForEachLine. Between reports it costs one
// comparison; for any other slice it does nothing.
func Consumed(chunk []byte, done int) {
	if len(chunk) == callMeter.total {
		callMeter.at(done)
	}
}
