// Command trap is a job module for the browser tests: its map ends the
// instance with proc_exit (as a wasm trap would) on a chunk that contains
// "exit", panics with a division by zero on one that contains "divide",
// and counts lines otherwise.
package main

import (
	"bytes"
	"os"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

var zero int

func init() {
	mr.Register(mr.Job{
		Map: func(chunk []byte, emit mr.Emit) error {
			if bytes.Contains(chunk, []byte("exit")) {
				os.Exit(3)
			}
			if bytes.Contains(chunk, []byte("divide")) {
				emit([]byte("never"), []byte(strconv.Itoa(1/zero)))
			}
			emit([]byte("lines"), []byte(strconv.Itoa(bytes.Count(chunk, []byte("\n")))))
			return nil
		},
		Reduce: func(key []byte, values mr.Values, emit mr.Emit) error { return nil },
	})
}

func main() {}
