// Command bomb is a hostile job whose map allocates until memory runs out.
package main

import "github.com/tabreduce/tabreduce/wasm/mr"

var keep [][]byte

func init() {
	mr.Register(mr.Job{
		Map: func([]byte, mr.Emit) error {
			for {
				b := make([]byte, 1<<20)
				b[len(b)-1] = 1
				keep = append(keep, b)
			}
		},
		Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
	})
}

func main() {}
