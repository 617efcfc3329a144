// Command namedjob is a job module that is not built in, for the tests of
// module names: it counts its input lines.
package main

import "github.com/tabreduce/tabreduce/wasm/mr"

func init() {
	mr.Register(mr.Job{
		Map: func(chunk []byte, emit mr.Emit) error {
			return mr.ForEachLine(chunk, func([]byte, uint64) error { emit([]byte("lines"), []byte("1")); return nil })
		},
		Reduce: mr.Sum{}.Combine,
	})
}

func main() {}
