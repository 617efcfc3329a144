// Command fatnoop is the noop job as modules were before the SDK dropped
// fmt: the same job, with fmt (and so os and reflection) linked in. The
// first-result benchmark runs it beside the noop job to show what module
// size costs a fresh tab.
package main

import (
	"fmt"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

func init() {
	mr.Register(mr.Job{
		Map: func(chunk []byte, _ mr.Emit) error {
			if len(chunk) > 1<<40 {
				return fmt.Errorf("chunk of %d bytes", len(chunk))
			}
			return nil
		},
		Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
	})
}

func main() {}
