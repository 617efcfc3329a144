package main

import (
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

func TestSum(t *testing.T) {
	in := []byte("a\t3\nb\t-2\na\t4\nc\nb\t10\n\nc\n")
	want := wasmtest.Pairs(map[string]string{"a": "7", "b": "8", "c": "2"})
	wasmtest.Check(t, "github.com/tabreduce/tabreduce/jobs/sum", Job, in, nil, driver.Options{ChunkSize: 8, Reducers: 2}, wasmtest.Equals(driver.Output{Pairs: want}))
}
