//go:build wasip1

package mr

import (
	"unsafe"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// The module's exports. Each one is a thin shell over the engine, which
// recovers panics so that an export never traps on a job's bug.

// inBuf is the module-owned buffer the host writes task input into. Keeping
// it in a package variable keeps it alive for the garbage collector.
var inBuf []byte

//go:wasmexport tr_version
func trVersion() uint32 { return abi.Version }

//go:wasmexport tr_alloc
func trAlloc(size uint32) uint32 {
	if uint32(cap(inBuf)) < size || cap(inBuf) == 0 {
		inBuf = make([]byte, max(size, 64))
	}
	inBuf = inBuf[:size]
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))))
}

// input returns the bytes the host wrote at ptr, which must lie in inBuf.
func input(ptr, size uint32) ([]byte, bool) {
	base := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))))
	if ptr != base || size > uint32(len(inBuf)) {
		return nil, false
	}
	return inBuf[:size], true
}

// task runs fn on the input, or reports a bad input.
func task(ptr, size uint32, fn func(e *engine, in []byte) abi.Status) uint32 {
	if registered == nil {
		registered = newEngine(Job{})
	}
	in, ok := input(ptr, size)
	if !ok {
		registered.out = append(registered.out[:0], "input is not the buffer tr_alloc returned"...)
		return uint32(abi.StatusBadInput)
	}
	return uint32(fn(registered, in))
}

//go:wasmexport tr_params
func trParams(ptr, size uint32) uint32 {
	return task(ptr, size, func(e *engine, in []byte) abi.Status { return e.setParams(in) })
}

//go:wasmexport tr_map
func trMap(ptr, size uint32) uint32 {
	return task(ptr, size, func(e *engine, in []byte) abi.Status {
		c, err := abi.DecodeChunk(in)
		if err != nil {
			return e.fail(badInput(err))
		}
		return e.runMap(c.Offset, c.Data)
	})
}

//go:wasmexport tr_combine
func trCombine(ptr, size uint32) uint32 {
	return task(ptr, size, func(e *engine, in []byte) abi.Status { return e.runCombine(in) })
}

//go:wasmexport tr_reduce
func trReduce(ptr, size uint32) uint32 {
	return task(ptr, size, func(e *engine, in []byte) abi.Status { return e.runReduce(in) })
}

//go:wasmexport tr_output
func trOutput() uint64 {
	if registered == nil || len(registered.out) == 0 {
		return 0
	}
	ptr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(registered.out))))
	return ptr<<32 | uint64(len(registered.out))
}

// reportProgress is the host's abi.ImportProgress.
//
//go:wasmimport tabreduce progress
func reportProgress(permille uint32)
