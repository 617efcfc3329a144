package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const pkg = "github.com/tabreduce/tabreduce/jobs/invertedindex"

// oracle builds the index with maps of sets, line by line.
func oracle(text string) driver.Output {
	index := map[string]map[string]bool{}
	offset, n := 0, 0
	for line := range strings.SplitAfterSeq(text, "\n") {
		body := strings.TrimSuffix(line, "\n")
		id, doc, ok := strings.Cut(body, "\t")
		if !ok {
			id, doc = strconv.Itoa(offset), body
		}
		offset += len(line)
		if line == "" {
			continue
		}
		n++
		for _, w := range strings.FieldsFunc(doc, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			w = strings.ToLower(w)
			if index[w] == nil {
				index[w] = map[string]bool{}
			}
			index[w][id] = true
		}
	}
	m := map[string]string{}
	for w, ids := range index {
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		slices.Sort(list)
		m[w] = strings.Join(list, ",")
	}
	var cs abi.Counters
	if n > 0 {
		cs = abi.Counters{{Name: "documents", Value: int64(n)}}
	}
	return driver.Output{Pairs: wasmtest.Pairs(m), Counters: cs}
}

func TestInvertedIndex(t *testing.T) {
	var big strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&big, "doc%04d\tThe %d quick foxes; the fox%d jumps\n", i, i%17, i%5)
	}
	tests := []struct {
		name, input string
		opts        driver.Options
	}{
		{"ids", "d1\tthe cat\nd2\tThe dog, the cat\nd3\t\n", driver.Options{}},
		{"offsets as ids", "the cat\nthe dog\n\nzebra", driver.Options{}},
		{"many chunks", big.String(), driver.Options{ChunkSize: 8 << 10, Reducers: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := oracle(tt.input)
			wasmtest.Check(t, pkg, Job, []byte(tt.input), nil, tt.opts, wasmtest.Equals(want))
		})
	}
}
