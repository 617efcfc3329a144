// Command bomb is a hostile job whose map allocates until memory runs out,
// touching every page it takes (the host's memory is measured against it).
package main

import "github.com/tabreduce/tabreduce/wasm/mr"

var keep [][]byte

func init() {
	mr.Register(mr.Job{
		Map: func([]byte, mr.Emit) error {
			for {
				b := make([]byte, 1<<20)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				keep = append(keep, b)
			}
		},
		Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
	})
}

func main() {}
