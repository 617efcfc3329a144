// Command noexports is a reactor that exports none of the ABI.
package main

//go:wasmexport hello
func hello() uint32 { return 42 }

func main() {}
