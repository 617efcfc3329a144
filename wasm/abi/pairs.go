package abi

import "bytes"

// A Pair is one key/value record. Keys and values are arbitrary bytes.
type Pair struct {
	Key, Value []byte
}

// Compare orders pairs by key, then by value, bytewise. It is the order of
// every sorted stream in the ABI.
func (p Pair) Compare(q Pair) int {
	if c := bytes.Compare(p.Key, q.Key); c != 0 {
		return c
	}
	return bytes.Compare(p.Value, q.Value)
}

// AppendPair appends one record of a pair stream:
//
//	u32 keyLen | key | u32 valueLen | value
func AppendPair(dst, key, value []byte) []byte {
	return appendBytes(appendBytes(dst, key), value)
}

// PairReader iterates over a pair stream without copying. Keys and values
// alias the stream.
type PairReader struct {
	r reader
}

// NewPairReader returns a reader over a pair stream.
func NewPairReader(stream []byte) *PairReader {
	return &PairReader{r: reader{buf: stream}}
}

// Next returns the next pair; ok is false at the end of the stream or on a
// malformed record (see Err).
func (p *PairReader) Next() (key, value []byte, ok bool) {
	if p.r.done() {
		return nil, nil, false
	}
	key = p.r.bytes("pair key")
	value = p.r.bytes("pair value")
	return key, value, p.r.err == nil
}

// Err returns the decoding error that stopped Next, if any.
func (p *PairReader) Err() error { return p.r.err }

// Offset is where the next pair starts in the stream: a place to resume
// reading from later (NewPairReader(stream[offset:])).
func (p *PairReader) Offset() int { return p.r.off }

// DecodePairs decodes a whole pair stream. The pairs alias stream.
func DecodePairs(stream []byte) ([]Pair, error) {
	var out []Pair
	pr := NewPairReader(stream)
	for {
		k, v, ok := pr.Next()
		if !ok {
			break
		}
		out = append(out, Pair{Key: k, Value: v})
	}
	return out, pr.Err()
}

// EncodePairs encodes pairs as a pair stream.
func EncodePairs(pairs []Pair) []byte {
	var out []byte
	for _, p := range pairs {
		out = AppendPair(out, p.Key, p.Value)
	}
	return out
}
