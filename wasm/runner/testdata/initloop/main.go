// Command initloop is a hostile job whose start (its package init, run by
// _initialize) never returns: compiling it must not hold a core for long.
package main

import "github.com/tabreduce/tabreduce/wasm/mr"

var spins uint64

func init() {
	for {
		spins++
	}
}

func init() {
	mr.Register(mr.Job{
		Map:    func([]byte, mr.Emit) error { return nil },
		Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
	})
}

func main() {}
