package abi

import (
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
