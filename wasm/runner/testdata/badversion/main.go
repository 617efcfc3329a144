// Command badversion implements the ABI's exports by hand, without the SDK,
// but claims ABI version 99.
package main

//go:wasmexport tr_version
func version() uint32 { return 99 }

//go:wasmexport tr_alloc
func alloc(uint32) uint32 { return 0 }

//go:wasmexport tr_params
func params(uint32, uint32) uint32 { return 0 }

//go:wasmexport tr_map
func mapf(uint32, uint32) uint32 { return 0 }

//go:wasmexport tr_combine
func combine(uint32, uint32) uint32 { return 0 }

//go:wasmexport tr_reduce
func reduce(uint32, uint32) uint32 { return 0 }

//go:wasmexport tr_output
func output() uint64 { return 0 }

func main() {}
