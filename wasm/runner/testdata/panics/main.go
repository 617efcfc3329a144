// Command panics is a job whose map panics on a chunk that starts with
// "panic" and counts lines otherwise: the SDK must turn the panic into an
// error and leave the instance usable.
package main

import (
	"bytes"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

func init() {
	mr.Register(mr.Job{
		Map: func(chunk []byte, emit mr.Emit) error {
			if bytes.HasPrefix(chunk, []byte("panic")) {
				var m map[string]int
				m["boom"]++ // nil map write
			}
			emit([]byte("lines"), []byte{byte('0' + bytes.Count(chunk, []byte("\n")))})
			return nil
		},
		Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
	})
}

func main() {}
