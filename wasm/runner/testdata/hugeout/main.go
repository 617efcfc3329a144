// Command hugeout is a hostile job whose map emits 8 MiB for any chunk.
package main

import "github.com/tabreduce/tabreduce/wasm/mr"

func init() {
	value := make([]byte, 64<<10)
	mr.Register(mr.Job{
		Map: func(_ []byte, emit mr.Emit) error {
			for range 128 {
				emit([]byte("k"), value)
			}
			return nil
		},
		Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
	})
}

func main() {}
