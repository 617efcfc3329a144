// Command badimport is a job that reads a file, so it imports WASI
// path_open, which the runner does not serve.
package main

import (
	"os"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

func init() {
	mr.Register(mr.Job{
		Map: func(_ []byte, emit mr.Emit) error {
			b, err := os.ReadFile("/etc/passwd")
			emit([]byte("stolen"), b)
			return err
		},
		Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
	})
}

func main() {}
