// Command invertedindex is a tabreduce job: it maps every word to the sorted,
// comma-separated list of the documents that contain it. Each input line is a
// document, "id<TAB>text"; a line without a tab is its own text and its id is
// its byte offset in the input. Words are maximal runs of Unicode letters and
// digits, lower-cased. Ids are sorted bytewise.
package main

import (
	"bytes"
	"strconv"
	"unicode"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Job is the inverted-index job.
var Job = mr.Job{Map: mapDocs, Reduce: joinIDs}

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}

var docs = mr.Counter("documents")

func mapDocs(chunk []byte, emit mr.Emit) error {
	seen := map[string]bool{}
	return mr.ForEachLine(chunk, func(line []byte, offset uint64) error {
		id, text, ok := bytes.Cut(line, []byte{'\t'})
		if !ok {
			id, text = strconv.AppendUint(nil, offset, 10), line
		}
		docs.Add(1)
		clear(seen)
		for _, w := range bytes.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			w = bytes.ToLower(w)
			if !seen[string(w)] {
				seen[string(w)] = true
				emit(w, id)
			}
		}
		return nil
	})
}

// joinIDs relies on the ABI's guarantee that values arrive sorted.
func joinIDs(word []byte, ids mr.Values, emit mr.Emit) error {
	var out, prev []byte
	for ids.Next() {
		id := ids.Value()
		if prev != nil && bytes.Equal(id, prev) {
			continue
		}
		if prev != nil {
			out = append(out, ',')
		}
		out = append(out, id...)
		prev = id
	}
	emit(word, out)
	return nil
}
