// Command trap is a job for the end-to-end tests whose map fails on purpose
// on a chunk that starts with a command word: "exit" exits the module (a
// trap: the instance is gone), "panic" panics (the SDK recovers it), "error"
// returns an error. Any other chunk counts its lines.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

func init() {
	mr.Register(mr.Job{
		Map: func(chunk []byte, emit mr.Emit) error {
			switch {
			case bytes.HasPrefix(chunk, []byte("exit")):
				fmt.Fprintln(os.Stderr, "trap job: exiting on purpose")
				os.Exit(3)
			case bytes.HasPrefix(chunk, []byte("panic")):
				panic("trap job: panicking on purpose")
			case bytes.HasPrefix(chunk, []byte("error")):
				return errors.New("trap job: failing on purpose")
			}
			emit([]byte("lines"), strconv.AppendInt(nil, int64(bytes.Count(chunk, []byte("\n"))), 10))
			return nil
		},
		Reduce: func(key []byte, values mr.Values, emit mr.Emit) error {
			for values.Next() {
				emit(key, values.Value())
			}
			return nil
		},
	})
}

func main() {}
