package runner

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// memoryAllocator reserves each instance's memory with mmap (memory.go).
var memoryAllocator experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(newMappedMemory)

// mappedMemory is a linear memory in one anonymous mapping of its maximum
// size: the system gives it pages as the module touches them.
type mappedMemory struct {
	buf []byte // the whole mapping; nil after Free
}

func newMappedMemory(capBytes, maxBytes uint64) experimental.LinearMemory {
	size := max(capBytes, maxBytes)
	if size == 0 || size > 1<<32 {
		return &heapMemory{}
	}
	buf, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil { // no address space left: fall back on the heap
		return &heapMemory{}
	}
	return &mappedMemory{buf: buf}
}

// Reallocate returns the memory at size bytes; the mapping never moves.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil // wazero fails the memory.grow
	}
	return m.buf[:size:size]
}

// Free unmaps the memory: its pages go back to the system at once.
func (m *mappedMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}
