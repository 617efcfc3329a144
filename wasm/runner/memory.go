package runner

import (
	"context"

	"github.com/tetratelabs/wazero/experimental"
)

// Linear memory and the host's. wazero keeps a module's memory in a Go
// slice that grows by append: each growth copies it, and the old copies
// stay on the Go heap until a collection, so a module at its cap could
// make the host hold several times the cap. Where the system allows it
// (memory_linux.go), an instance's memory is instead one reservation of
// address space as large as the module may ever grow, of which only the
// pages the module touches take memory: growth copies nothing, and closing
// the instance returns its memory to the system at once. The host's memory
// for modules is then bounded by the instances alive (slots, and the idle
// ones of the pool, each under RecyclePages) times what each touched.

// withMemory returns ctx carrying the memory allocator for instances.
func withMemory(ctx context.Context) context.Context {
	if memoryAllocator == nil {
		return ctx
	}
	return experimental.WithMemoryAllocator(ctx, memoryAllocator)
}

// heapMemory is a linear memory in a Go slice, where no mapping could be
// made.
type heapMemory struct{ buf []byte }

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size > uint64(cap(m.buf)) {
		buf := make([]byte, size, size+size/4)
		copy(buf, m.buf)
		m.buf = buf
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *heapMemory) Free() { m.buf = nil }
