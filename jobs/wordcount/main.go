// Command wordcount is a tabreduce job: it counts words, maximal runs of
// Unicode letters and digits, lower-cased. Output: word → count in decimal.
// The map side combines with mr.Sum, the SDK's counting fast path.
package main

import (
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
	word      []byte // reused buffer for the current lower-cased word
)

func mapWords(chunk []byte, emit mr.Emit) error {
	n := 0
	word = scanWords(chunk, word, func(w []byte) {
		emit(w, one)
		n++
	})
	wordsSeen.Add(int64(n))
	return nil
}

// asciiWord maps an ASCII byte to its lower-case form if it belongs to a word
// and to 0 if it separates words.
var asciiWord = func() (t [utf8.RuneSelf]byte) {
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

// scanWords calls fn with every word of text, lower-cased in buf (which it
// returns for reuse). fn must not keep the word.
func scanWords(text, buf []byte, fn func(word []byte)) []byte {
	w := buf[:0]
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			i++
			if l := asciiWord[c]; l != 0 {
				w = append(w, l)
			} else if len(w) > 0 {
				fn(w)
				w = w[:0]
			}
			continue
		}
		r, n := utf8.DecodeRune(text[i:])
		i += n
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			w = utf8.AppendRune(w, unicode.ToLower(r))
		} else if len(w) > 0 {
			fn(w)
			w = w[:0]
		}
	}
	if len(w) > 0 {
		fn(w)
	}
	return w
}
