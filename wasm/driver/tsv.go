package driver

import (
	"bufio"
	"io"
)

// WriteTSV writes the pairs as key<TAB>value lines. Keys and values are
// arbitrary bytes, so a backslash, tab, newline or carriage return in them is
// written as \\, \t, \n or \r; everything else is written as is.
func (o Output) WriteTSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, p := range o.Pairs {
		WriteTSVPair(bw, p.Key, p.Value)
	}
	return bw.Flush()
}

// WriteTSVPair writes one pair as a key<TAB>value line, escaped as WriteTSV
// escapes it. Errors stay in w until its Flush.
func WriteTSVPair(w *bufio.Writer, key, value []byte) {
	writeEscaped(w, key)
	w.WriteByte('\t')
	writeEscaped(w, value)
	w.WriteByte('\n')
}

func writeEscaped(w *bufio.Writer, b []byte) {
	for _, c := range b {
		switch c {
		case '\\':
			w.WriteString(`\\`)
		case '\t':
			w.WriteString(`\t`)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		default:
			w.WriteByte(c)
		}
	}
}
