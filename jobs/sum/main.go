// Command sum is a tabreduce job that adds integers by key: its map reads
// key<TAB>value lines (a line without a tab is a key with the value 1), its
// combiner and reduce add decimal values. It is the built-in reducer of
// command jobs whose mappers print key<TAB>count lines
// (`tabreduce submit --mapper wc.wasm --reducer sum`).
package main

import (
	"bytes"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Job is the sum job.
var Job = mr.Job{
	Map: func(chunk []byte, emit mr.Emit) error {
		return mr.ForEachLine(chunk, func(line []byte, _ uint64) error {
			if len(line) == 0 {
				return nil
			}
			k, v, ok := bytes.Cut(line, []byte{'\t'})
			if !ok {
				v = one
			}
			emit(k, v)
			return nil
		})
	},
	Combine: mr.Sum{},
	Reduce:  mr.Sum{}.Combine,
}

var one = []byte("1")

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}
