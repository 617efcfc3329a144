// Command wordcount is a tabreduce job: it counts words, maximal runs of
// Unicode letters and digits, lower-cased. Output: word → count in decimal.
// The map side combines with mr.Sum, the SDK's counting fast path.
package main

import (
	"encoding/binary"
	"math/bits"
	"unicode"
	"unicode/utf8"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Job is the wordcount job.
var Job = mr.Job{
	Map:     mapWords,
	Combine: mr.Sum{},
	Reduce:  mr.Sum{}.Combine,
}

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}

var (
	one       = []byte("1")
	wordsSeen = mr.Counter("words")
	word      []byte // reused buffer for lower-cased words
)

// segment is how much of a chunk mapWords scans between progress reports.
const segment = 64 << 10

func mapWords(chunk []byte, emit mr.Emit) error {
	var words int
	for pos := 0; pos < len(chunk); {
		end := cutAfter(chunk, pos+segment)
		var n int
		word, n = scanWords(chunk[pos:end], word, one, emit)
		words += n
		pos = end
		mr.Consumed(chunk, pos)
	}
	wordsSeen.Add(int64(words))
	return nil
}

// cutAfter returns the first index from i on where text may be cut without
// cutting a word: an ASCII separator (words never span one, and it is no
// part of a multi-byte rune), or the end of text.
func cutAfter(text []byte, i int) int {
	for ; i < len(text); i++ {
		if c := text[i]; c < utf8.RuneSelf && asciiWord[c] == 0 {
			return i
		}
	}
	return len(text)
}

// asciiWord maps an ASCII byte to its lower-case form if it belongs to a word
// and to 0 if it separates words; bytes of multi-byte runes map to 0 too (the
// scanner checks them apart). A 256-entry table indexed by a byte needs no
// bounds check.
var asciiWord = func() (t [256]byte) {
	for c := range utf8.RuneSelf {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			t[c] = byte(c)
		case 'A' <= c && c <= 'Z':
			t[c] = byte(c) + 'a' - 'A'
		}
	}
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// wordBytes classifies eight bytes at once: mask has 0x80 in every byte of x
// that is an ASCII letter or digit and 0 in the others (multi-byte rune bytes
// included); lower is x with its letters lower-cased (other bytes garbage).
// Each comparison is an add that sets a byte's high bit when the byte is at
// least the bound; with high bits cleared first, no carry crosses a byte.
func wordBytes(x uint64) (mask, lower uint64) {
	x7 := x &^ highs
	lower = x7 | 0x20*ones // A-Z fold onto a-z; digits have the bit already
	letter := (lower + (0x80-'a')*ones) &^ (lower + (0x7f-'z')*ones)
	digit := (x7 + (0x80-'0')*ones) &^ (x7 + (0x7f-'9')*ones)
	return (letter | digit) & highs &^ x, lower
}

// scanWords calls emit(word, value) for every word of text, lower-cased, and
// returns how many there were; buf is scratch space for lower-cased words,
// returned for reuse. emit must not keep the word, which may alias text.
//
// Words of up to 15 ASCII letters and digits, nearly all words of English
// text, take a fast path that classifies and lower-cases eight bytes per step
// (wordBytes) and stores the word into buf with one or two 8-byte writes;
// everything else goes through wordAt, a byte at a time.
func scanWords(text, buf, value []byte, emit func(word, value []byte)) ([]byte, int) {
	if cap(buf) < 16 {
		buf = make([]byte, 0, 64)
	}
	n, i := 0, 0
	for i+16 <= len(text) {
		x := binary.LittleEndian.Uint64(text[i:])
		m, y := wordBytes(x)
		if m&0x80 == 0 && x&0x80 == 0 {
			// Separators: skip to the next word byte or multi-byte rune.
			i += bits.TrailingZeros64(m|x&highs) >> 3
			continue
		}
		if m&0x80 != 0 {
			l := bits.TrailingZeros64(^m&highs) >> 3 // word bytes in x
			if l < 8 && x>>(8*l)&0x80 == 0 {
				w := buf[:16]
				binary.LittleEndian.PutUint64(w, y)
				emit(w[:l], value)
				n, i = n+1, i+l
				continue
			}
			if l == 8 {
				x2 := binary.LittleEndian.Uint64(text[i+8:])
				m2, y2 := wordBytes(x2)
				l2 := bits.TrailingZeros64(^m2&highs) >> 3
				if l2 < 8 && x2>>(8*l2)&0x80 == 0 {
					w := buf[:16]
					binary.LittleEndian.PutUint64(w, y)
					binary.LittleEndian.PutUint64(w[8:], y2)
					emit(w[:8+l2], value)
					n, i = n+1, i+8+l2
					continue
				}
			}
		}
		var w []byte
		w, i, buf = wordAt(text, i, buf)
		if len(w) > 0 {
			emit(w, value)
			n++
		}
	}
	for i < len(text) {
		var w []byte
		w, i, buf = wordAt(text, i, buf)
		if len(w) > 0 {
			emit(w, value)
			n++
		}
	}
	return buf, n
}

// wordAt reads text from i, a byte at a time: the word that starts there,
// lower-cased (in buf if that needs a copy), and the index past it; or an
// empty word and the index past the separator at i. It returns buf, grown if
// it had to.
func wordAt(text []byte, i int, buf []byte) (word []byte, next int, _ []byte) {
	c := text[i]
	if c >= utf8.RuneSelf {
		word, next = unicodeWord(text, i, buf[:0])
		return word, next, word[:0]
	}
	if asciiWord[c] == 0 {
		return nil, i + 1, buf
	}
	start := i
	var upper byte // non-zero if some byte differs from its lower case
	for ; i < len(text); i++ {
		c := text[i]
		l := asciiWord[c]
		if l == 0 {
			break
		}
		upper |= l ^ c
	}
	switch {
	case i < len(text) && text[i] >= utf8.RuneSelf:
		word, next = unicodeWord(text, start, buf[:0])
		return word, next, word[:0]
	case upper == 0:
		return text[start:i], i, buf
	}
	word = buf[:0]
	for _, c := range text[start:i] {
		word = append(word, asciiWord[c])
	}
	return word, i, word[:0]
}

// unicodeWord reads the word that starts at text[i], any runes, lower-cased
// into w, and returns it with the index just past it. If text[i] starts no
// word, it skips that one rune and returns an empty word.
func unicodeWord(text []byte, i int, w []byte) ([]byte, int) {
	for i < len(text) {
		r, n := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRune(text[i:])
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			if len(w) == 0 {
				i += n
			}
			break
		}
		w = utf8.AppendRune(w, unicode.ToLower(r))
		i += n
	}
	return w, i
}
