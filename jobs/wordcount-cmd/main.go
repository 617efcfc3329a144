// Command wordcount-cmd is the wordcount job written as a plain WASI
// command, the way Hadoop Streaming mappers are written: it reads its chunk
// on stdin, counts the words (maximal runs of Unicode letters and digits,
// lower-cased, as the reactor wordcount does) and prints word<TAB>count
// lines. Its reducer is the built-in sum. Build it as an ordinary program:
//
//	GOOS=wasip1 GOARCH=wasm go build -o wordcount-cmd.wasm .
package main

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"unicode"
	"unicode/utf8"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		os.Stderr.WriteString("wordcount-cmd: " + err.Error() + "\n")
		os.Exit(1)
	}
	counts := Count(in)
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	line := make([]byte, 0, 64)
	for w, n := range counts {
		line = strconv.AppendInt(append(append(line[:0], w...), '\t'), int64(n), 10)
		out.Write(append(line, '\n'))
	}
	if err := out.Flush(); err != nil {
		os.Exit(1)
	}
	os.Stderr.WriteString("reporter:counter:wordcount,words," + strconv.Itoa(len(counts)) + "\n")
}

// Count counts the words of text.
func Count(text []byte) map[string]int {
	counts := map[string]int{}
	w := make([]byte, 0, 64)
	flush := func() {
		if len(w) > 0 {
			counts[string(w)]++
			w = w[:0]
		}
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				w = append(w, c)
			case 'A' <= c && c <= 'Z':
				w = append(w, c+'a'-'A')
			default:
				flush()
			}
			continue
		}
		r, n := utf8.DecodeRune(text[i:])
		i += n
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			w = utf8.AppendRune(w, unicode.ToLower(r))
		} else {
			flush()
		}
	}
	flush()
	return counts
}
