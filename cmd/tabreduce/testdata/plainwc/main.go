// Command plainwc is what a Go programmer writes without tabreduce: read a
// file, split it on anything but letters and digits, lower-case, count in
// a map, print word<TAB>count sorted by word. The size test measures the
// job against it.
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode"
)

func main() {
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(string(b), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		counts[strings.ToLower(w)]++
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.Sort(words)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	for _, w := range words {
		fmt.Fprintf(out, "%s\t%d\n", w, counts[w])
	}
	out.Flush()
}
