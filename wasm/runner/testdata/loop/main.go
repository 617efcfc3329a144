// Command loop is a hostile job whose map never returns.
package main

import "github.com/tabreduce/tabreduce/wasm/mr"

var spins = mr.Counter("spins")

func init() {
	mr.Register(mr.Job{
		Map: func([]byte, mr.Emit) error {
			for {
				spins.Add(1)
			}
		},
		Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
	})
}

func main() {}
