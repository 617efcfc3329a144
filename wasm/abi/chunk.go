package abi

import (
	"bytes"
	"encoding/binary"

	"github.com/tabreduce/tabreduce/wasm/internal/errfmt"
)

// ChunkHeaderSize is the size of the header in front of a map chunk.
const ChunkHeaderSize = 8

// A Chunk is the input of one map task: a slice of the job's input that
// starts and ends on a record (line) boundary, and the byte offset of its
// first byte within the whole input. On the wire it is
//
//	u64 offset | data (to the end)
type Chunk struct {
	Offset uint64
	Data   []byte
}

// AppendChunkHeader appends the header of a chunk at offset; the data follows
// it directly.
func AppendChunkHeader(dst []byte, offset uint64) []byte {
	return binary.LittleEndian.AppendUint64(dst, offset)
}

// DecodeChunk splits a chunk frame. Data aliases b.
func DecodeChunk(b []byte) (Chunk, error) {
	if len(b) < ChunkHeaderSize {
		return Chunk{}, errfmt.Kind(ErrTruncated, "chunk header is "+errfmt.Int(len(b))+" bytes, want "+errfmt.Int(ChunkHeaderSize))
	}
	return Chunk{Offset: binary.LittleEndian.Uint64(b), Data: b[ChunkHeaderSize:]}, nil
}

// The chunking rule, the one every host applies to a job's input: a chunk
// is about size bytes and ends just after a newline (the last one where the
// input ends), so a record (a line) is never split; a line longer than size
// makes a longer chunk.

// SplitChunks cuts input into chunks by the chunking rule.
func SplitChunks(input []byte, size int) []Chunk {
	var out []Chunk
	for off := 0; off < len(input); {
		end := ChunkEnd(input, off, size)
		out = append(out, Chunk{Offset: uint64(off), Data: input[off:end:end]})
		off = end
	}
	return out
}

// ChunkEnd is where the chunk of input that starts at off ends, by the
// chunking rule.
func ChunkEnd(input []byte, off, size int) int {
	end := min(off+size, len(input))
	if end < len(input) {
		if nl := bytes.IndexByte(input[end-1:], '\n'); nl >= 0 {
			return end + nl
		}
		return len(input)
	}
	return end
}
