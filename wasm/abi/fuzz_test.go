package abi

import (
	"bytes"
	"testing"
)

// The decoders read what a module or a host sent; a malformed frame must give
// an error, never a panic, and whatever decodes must re-encode to the same
// bytes.

func FuzzDecodePairs(f *testing.F) {
	f.Add(EncodePairs([]Pair{{Key: []byte("a"), Value: []byte("1")}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs, err := DecodePairs(b)
		if err != nil {
			return
		}
		if got := EncodePairs(pairs); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, want %x", got, b)
		}
	})
}

func FuzzDecodeGroups(f *testing.F) {
	f.Add(EncodeGroups([]Pair{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}))
	f.Add([]byte{1, 0, 0, 0, 'a', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		groups, err := DecodeGroups(b)
		if err != nil {
			return
		}
		var re []byte
		for _, g := range groups {
			re = AppendGroupHeader(re, g.Key, len(g.Values))
			for _, v := range g.Values {
				re = AppendValue(re, v)
			}
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("re-encoded %x, want %x", re, b)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add(AppendResult(nil, Result{Pairs: EncodePairs([]Pair{{Key: []byte("k"), Value: []byte("v")}}), Counters: Counters{{"n", 2}}}))
	f.Add([]byte{4, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResult(b)
		if err != nil {
			return
		}
		if got := AppendResult(nil, r); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, want %x", got, b)
		}
	})
}
