package abi

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestPairsRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		pairs []Pair
	}{
		{"empty", nil},
		{"one", []Pair{{Key: []byte("a"), Value: []byte("1")}}},
		{"binary", []Pair{{Key: []byte{0, '\t', '\n', 0xff}, Value: []byte{}}, {Key: []byte{}, Value: []byte("x\x00y")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePairs(EncodePairs(tt.pairs))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.pairs) {
				t.Fatalf("got %d pairs, want %d", len(got), len(tt.pairs))
			}
			for i := range got {
				if got[i].Compare(tt.pairs[i]) != 0 {
					t.Errorf("pair %d = %q, want %q", i, got[i], tt.pairs[i])
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	group := func(key string, vals ...string) []byte {
		b := AppendGroupHeader(nil, []byte(key), len(vals))
		for _, v := range vals {
			b = AppendValue(b, []byte(v))
		}
		return b
	}
	tests := []struct {
		name   string
		decode func([]byte) error
		in     []byte
		want   error
	}{
		{"pairs short prefix", decodePairsErr, []byte{1, 0}, ErrTruncated},
		{"pairs short key", decodePairsErr, []byte{5, 0, 0, 0, 'a'}, ErrTruncated},
		{"pairs missing value", decodePairsErr, []byte{1, 0, 0, 0, 'a'}, ErrTruncated},
		{"groups unsorted", decodeGroupsErr, append(group("b", "1"), group("a", "1")...), ErrUnsorted},
		{"groups duplicate", decodeGroupsErr, append(group("a", "1"), group("a", "1")...), ErrUnsorted},
		{"groups empty", decodeGroupsErr, group("a"), ErrEmptyGroup},
		{"groups short value", decodeGroupsErr, group("a", "1")[:10], ErrTruncated},
		{"counters unsorted", decodeCountersErr, AppendCounters(nil, Counters{{"b", 1}, {"a", 2}}), ErrUnsorted},
		{"counters short", decodeCountersErr, AppendCounters(nil, Counters{{"a", 1}})[:7], ErrTruncated},
		{"result short", decodeResultErr, []byte{9, 0, 0, 0}, ErrTruncated},
		{"chunk short", func(b []byte) error { _, err := DecodeChunk(b); return err }, []byte{1, 2, 3}, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.decode(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func decodePairsErr(b []byte) error    { _, err := DecodePairs(b); return err }
func decodeGroupsErr(b []byte) error   { _, err := DecodeGroups(b); return err }
func decodeCountersErr(b []byte) error { _, err := DecodeCounters(b); return err }
func decodeResultErr(b []byte) error   { _, err := DecodeResult(b); return err }

func TestGroupsRoundTrip(t *testing.T) {
	sorted := []Pair{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("a"), Value: []byte("2")},
		{Key: []byte("b"), Value: []byte("")},
	}
	got, err := DecodeGroups(EncodeGroups(sorted))
	if err != nil {
		t.Fatal(err)
	}
	want := []Group{
		{Key: []byte("a"), Values: [][]byte{[]byte("1"), []byte("2")}},
		{Key: []byte("b"), Values: [][]byte{{}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestResultRoundTrip(t *testing.T) {
	in := Result{
		Pairs:    AppendPair(nil, []byte("k"), []byte("v")),
		Counters: Counters{{"lines", 3}, {"neg", -7}},
	}
	got, err := DecodeResult(AppendResult(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pairs, in.Pairs) || !reflect.DeepEqual(got.Counters, in.Counters) {
		t.Fatalf("got %+v, want %+v", got, in)
	}
}

func TestChunk(t *testing.T) {
	frame := append(AppendChunkHeader(nil, 1<<40+5), "data\n"...)
	c, err := DecodeChunk(frame)
	if err != nil {
		t.Fatal(err)
	}
	if c.Offset != 1<<40+5 || string(c.Data) != "data\n" {
		t.Fatalf("got %+v", c)
	}
}

func TestCountersMerge(t *testing.T) {
	a := Counters{{"a", 1}, {"c", 3}}
	b := Counters{{"b", 2}, {"c", 4}, {"d", 5}}
	want := Counters{{"a", 1}, {"b", 2}, {"c", 7}, {"d", 5}}
	if got := a.Merge(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := want.Get("c"); got != 7 {
		t.Fatalf("Get(c) = %d", got)
	}
	if got := want.Get("zz"); got != 0 {
		t.Fatalf("Get(zz) = %d", got)
	}
}
