package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const pkg = "github.com/tabreduce/tabreduce/jobs/wordcount"

// oracle counts words the plain way: strings.FieldsFunc + ToLower + a map.
func oracle(text string) driver.Output {
	counts := map[string]int{}
	total := 0
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		counts[strings.ToLower(w)]++
		total++
	}
	m := map[string]string{}
	for w, n := range counts {
		m[w] = strconv.Itoa(n)
	}
	out := driver.Output{Pairs: wasmtest.Pairs(m)}
	if total > 0 {
		out.Counters = abi.Counters{{Name: "words", Value: int64(total)}}
	}
	return out
}

func TestWordcount(t *testing.T) {
	tests := []struct {
		name  string
		input string
		opts  driver.Options
	}{
		{"empty", "", driver.Options{}},
		{"simple", "the cat and THE hat\nthe end\n", driver.Options{}},
		{"unicode", "Ünïcödé straße ΣΊΣΥΦΟΣ 東京 2024年 x²\n\xff broken \xc3 utf8\n", driver.Options{}},
		{"no final newline", "a b a", driver.Options{}},
		{"many chunks and reducers", generate(200 << 10), driver.Options{ChunkSize: 4 << 10, Reducers: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := oracle(tt.input)
			wasmtest.Check(t, pkg, Job, []byte(tt.input), nil, tt.opts, wasmtest.Equals(want))
		})
	}
}

// generate returns about n bytes of text over a small vocabulary with mixed
// case and punctuation.
func generate(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Word%d, word%d; ÉCOLE école. ", i%97, i%13)
		if i%7 == 0 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// FuzzScanWords checks the tokenizer's ASCII fast path against the plain
// definition (runs of Unicode letters and digits, lower-cased), on any bytes.
func FuzzScanWords(f *testing.F) {
	for _, s := range []string{"", "the Cat", "straße STRASSE", "a\xffb \xc3 x²y", "ÉCOLE école.", "Ab—cd", "İstanbul ǅ",
		"The quick brown Fox, jumps over 12 lazy dogs. abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQ x",
		"seventeen-letters abcdefghijklmno abcdefghijklmnop abcdefgH ÉCOLE abcdefghé abcdefghijklmnoé end."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []string
		for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			want = append(want, strings.ToLower(w))
		}
		var got []string
		_, n := scanWords([]byte(s), nil, nil, func(w, _ []byte) { got = append(got, string(w)) })
		if n != len(got) {
			t.Fatalf("count %d, %d words", n, len(got))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Fatalf("scanWords(%q) = %q, want %q", s, got, want)
		}
	})
}

// TestMapWordsSegments checks that scanning a chunk in segments, for its
// progress reports, finds the words of scanning it whole: words that straddle
// a segment's end, multi-byte runes there, and a word longer than a segment.
func TestMapWordsSegments(t *testing.T) {
	var b strings.Builder
	b.WriteString(generate(segment - 3))
	b.WriteString("ÉcoleÉcole straße")
	b.WriteString(strings.Repeat("Long", segment/2))
	b.WriteString(" x²y\xff\xc3 ")
	b.WriteString(generate(2*segment + 5))
	text := []byte(b.String())

	var whole, parts []string
	scanWords(text, nil, nil, func(w, _ []byte) { whole = append(whole, string(w)) })
	if err := mapWords(text, func(w, _ []byte) { parts = append(parts, string(w)) }); err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(whole) {
		t.Fatalf("%d words in segments, %d whole", len(parts), len(whole))
	}
	for i := range whole {
		if parts[i] != whole[i] {
			t.Fatalf("word %d: %q in segments, %q whole", i, parts[i], whole[i])
		}
	}
	if len(whole) < 3*segment/20 {
		t.Fatalf("only %d words: the text is not what the test means", len(whole))
	}
}
