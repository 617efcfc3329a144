package main

import (
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const pkg = "github.com/tabreduce/tabreduce/jobs/noop"

func TestNoop(t *testing.T) {
	input := []byte(strings.Repeat("some input line\n", 1000))
	wasmtest.Check(t, pkg, Job, input, nil, driver.Options{ChunkSize: 1 << 10}, wasmtest.Equals(driver.Output{}))
}
