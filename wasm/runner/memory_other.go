//go:build !linux

package runner

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator is nil: wazero's own slices (memory.go).
var memoryAllocator experimental.MemoryAllocator
