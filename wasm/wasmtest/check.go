package wasmtest

import (
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Check runs job natively with mr.RunLocalOptions and the module built from
// pkg under wazero, over the same input with the same options, and fails the
// test unless oracle(local output) holds and the module's output (counters
// included) equals the local one. It returns the local output.
func Check(t *testing.T, pkg string, job mr.Job, input, params []byte, opts driver.Options, oracle func(driver.Output) string) driver.Output {
	t.Helper()
	local, err := mr.RunLocalOptions(t.Context(), job, input, params, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := oracle(local); d != "" {
		t.Fatalf("RunLocal vs oracle: %s", d)
	}
	if d := Diff(RunModule(t, pkg, input, params, opts), local); d != "" {
		t.Fatalf("module vs RunLocal: %s", d)
	}
	return local
}

// Equals is an oracle check for Check: the output must equal want.
func Equals(want driver.Output) func(driver.Output) string {
	return func(got driver.Output) string { return Diff(got, want) }
}
