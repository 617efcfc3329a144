package driver

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

func TestSplitChunks(t *testing.T) {
	tests := []struct {
		name  string
		input string
		size  int
		want  []string
	}{
		{"empty", "", 4, nil},
		{"exact lines", "ab\ncd\n", 3, []string{"ab\n", "cd\n"}},
		{"extends to newline", "abcdef\ngh\n", 2, []string{"abcdef\n", "gh\n"}},
		{"no final newline", "ab\ncd", 3, []string{"ab\n", "cd"}},
		{"several lines per chunk", "a\nb\nc\nd\n", 4, []string{"a\nb\n", "c\nd\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := SplitChunks([]byte(tt.input), tt.size)
			var got []string
			off := uint64(0)
			for _, c := range chunks {
				if c.Offset != off {
					t.Fatalf("chunk at %d, want %d", c.Offset, off)
				}
				off += uint64(len(c.Data))
				got = append(got, string(c.Data))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPartition(t *testing.T) {
	// FNV-1a is part of the contract between hosts: pin a few values.
	tests := []struct {
		key  string
		r    int
		want int
	}{
		{"a", 1, 0}, {"a", 7, 0xe40c292c % 7}, {"hello", 16, 0x4f9f2cab % 16}, {"", 3, 0x811c9dc5 % 3},
	}
	for _, tt := range tests {
		if got := Partition([]byte(tt.key), tt.r); got != tt.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", tt.key, tt.r, got, tt.want)
		}
	}
}

func TestWriteTSV(t *testing.T) {
	out := Output{Pairs: []abi.Pair{
		{Key: []byte("plain"), Value: []byte("1")},
		{Key: []byte("tab\there"), Value: []byte("line\nbreak\\\r")},
	}}
	var buf bytes.Buffer
	if err := out.WriteTSV(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "plain\t1\ntab\\there\tline\\nbreak\\\\\\r\n"; buf.String() != want {
		t.Fatalf("got %q, want %q", buf.String(), want)
	}
}

// echo is an executor written against the ABI by hand: map emits each line
// as a key with value "1"; reduce emits the key with its value count.
type echo struct{ failAt uint64 }

func (e echo) Map(_ context.Context, c abi.Chunk) (abi.Result, error) {
	if c.Offset == e.failAt {
		return abi.Result{}, errors.New("boom")
	}
	var pairs []byte
	for line := range bytes.Lines(c.Data) {
		pairs = abi.AppendPair(pairs, bytes.TrimSuffix(line, []byte("\n")), []byte("1"))
	}
	return abi.Result{Pairs: pairs, Counters: abi.Counters{{Name: "maps", Value: 1}}}, nil
}

func (echo) Reduce(_ context.Context, groups []byte) (abi.Result, error) {
	gs, err := abi.DecodeGroups(groups)
	if err != nil {
		return abi.Result{}, err
	}
	var pairs []byte
	for _, g := range gs {
		pairs = abi.AppendPair(pairs, g.Key, []byte(strings.Repeat("*", len(g.Values))))
	}
	return abi.Result{Pairs: pairs}, nil
}

func TestRun(t *testing.T) {
	input := []byte(strings.Repeat("b\na\nc\na\n", 50))
	for _, opts := range []Options{{}, {ChunkSize: 8, Reducers: 3, ReduceBatch: 1, Parallelism: 4}} {
		out, err := Run(t.Context(), echo{failAt: 1 << 60}, input, opts)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		out.WriteTSV(&buf)
		want := "a\t" + strings.Repeat("*", 100) + "\nb\t" + strings.Repeat("*", 50) + "\nc\t" + strings.Repeat("*", 50) + "\n"
		if buf.String() != want {
			t.Fatalf("opts %+v: got %q", opts, buf.String())
		}
		if maps := out.Counters.Get("maps"); maps != int64(len(SplitChunks(input, opts.withDefaults().ChunkSize))) {
			t.Fatalf("maps counter %d", maps)
		}
	}
	_, err := Run(t.Context(), echo{failAt: 8}, input, Options{ChunkSize: 8, Parallelism: 2})
	if err == nil || !strings.Contains(err.Error(), "map task 1 (offset 8): boom") {
		t.Fatalf("err = %v, want it to name map task 1", err)
	}
}
