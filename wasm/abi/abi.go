// Package abi is the wire contract between a tabreduce host and a job module:
// the export names, the status codes, the WASI import allowlist and the
// record framing of everything that crosses the module boundary (chunks,
// key/value pair streams, grouped reduce input, counters and results).
//
// It is pure Go with no dependencies beyond the standard library, so the same
// code frames records inside a wasip1 module (through package mr) and in the
// host (package runner). wasm/ABI.md is the normative description for authors
// who write modules in other languages; this package implements it.
//
// All integers are little-endian. Lengths are u32, so no single key, value or
// counter name may exceed 4 GiB - 1 bytes (the wasm32 address space is smaller
// anyway).
package abi

import "errors"

// Version is the ABI version this package speaks. A module reports the version
// it implements from the ExportVersion export; a host refuses a module whose
// version it does not speak.
const Version = 1

// The functions a job module exports. Their signatures (wasm core types) are
// documented in wasm/ABI.md.
const (
	ExportVersion = "tr_version" // () -> i32
	ExportAlloc   = "tr_alloc"   // (size i32) -> ptr i32
	ExportParams  = "tr_params"  // (ptr, len i32) -> status i32
	ExportMap     = "tr_map"     // (ptr, len i32) -> status i32
	ExportCombine = "tr_combine" // (ptr, len i32) -> status i32
	ExportReduce  = "tr_reduce"  // (ptr, len i32) -> status i32
	ExportOutput  = "tr_output"  // () -> i64 (ptr<<32 | len)
	ExportMemory  = "memory"     // the module's linear memory
	// ExportInitialize is the optional reactor initialiser; a host calls it
	// once, before anything else, when the module exports it.
	ExportInitialize = "_initialize"
)

// RequiredExports lists the function exports every module must have.
var RequiredExports = []string{ExportVersion, ExportAlloc, ExportParams, ExportMap, ExportCombine, ExportReduce, ExportOutput}

// Status is what a task export returns.
type Status uint32

const (
	// StatusOK means the output buffer holds a result frame.
	StatusOK Status = 0
	// StatusJobError means the job returned an error (or panicked); the output
	// buffer holds a UTF-8 message. The instance remains usable.
	StatusJobError Status = 1
	// StatusBadInput means the module could not decode what the host sent;
	// the output buffer holds a UTF-8 message. It is a host bug.
	StatusBadInput Status = 2
	// StatusNoCombiner is what tr_combine returns in a module that has no
	// combiner; the host then uses the map output as it is.
	StatusNoCombiner Status = 3
)

// WASIModule is the module of the WASI functions a job may import.
const WASIModule = "wasi_snapshot_preview1"

// HostModule is the module of the host's own optional imports; a reactor
// may import ImportProgress from it, nothing else.
const HostModule = "tabreduce"

// ImportProgress is the optional import `tabreduce.progress(permille i32)`
// by which a reactor says how far the call it is in has got: 0 to 1000 of
// its input consumed. It returns nothing and changes nothing the module can
// see, so results and hashes do not depend on it.
const ImportProgress = "progress"

// MaxProgress is the permille of a call that has consumed all its input.
const MaxProgress = 1000

// AllowedImports is the set of WASI preview 1 functions a job module may
// import: what Go's wasip1 runtime and its os package need, and what a small
// browser shim can serve without files, sockets or a real clock.
var AllowedImports = map[string]bool{
	"sched_yield": true, "proc_exit": true, "args_get": true, "args_sizes_get": true,
	"clock_time_get": true, "environ_get": true, "environ_sizes_get": true,
	"fd_write": true, "random_get": true, "poll_oneoff": true,
	"fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true,
	"fd_prestat_get": true, "fd_prestat_dir_name": true, "fd_read": true,
}

// Errors returned by the decoders. They wrap the position where decoding
// stopped.
var (
	// ErrTruncated means a frame ends inside a length prefix or a payload.
	ErrTruncated = errors.New("abi: truncated frame")
	// ErrUnsorted means grouped input or counters are not in strictly
	// ascending order.
	ErrUnsorted = errors.New("abi: keys not strictly ascending")
	// ErrEmptyGroup means a group in grouped input has no values.
	ErrEmptyGroup = errors.New("abi: group without values")
)
