// Package preinit runs a reactor module's _initialize once, at build time,
// and writes a module that starts where that call ended: its linear memory
// and globals as _initialize left them (the memory's bytes as data
// segments, the globals' values as their initial values), with no
// _initialize export. A host that instantiates it skips the start, which
// for a Go module is the runtime's start: in a browser, V8 compiles each
// function on its first call, so a Go reactor's _initialize is mostly the
// compile of the 300-odd runtime functions it calls (tens of ms in a fresh
// tab), where the first task needs only a part of them.
//
// It is Wizer's idea for modules on our ABI: the host a module runs on is
// deterministic (wasm/ABI.md: a fixed clock, a fixed-seed random stream,
// no arguments, no environment, no files), so the state _initialize
// leaves does not depend on where it ran.
package preinit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/tabreduce/tabreduce/wasm/runner"
)

// Section ids of the binary format.
const (
	secCustom    = 0
	secImport    = 2
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secData      = 11
	secDataCount = 12
)

const initialize = "_initialize"

type section struct {
	id   byte
	body []byte
}

func readSections(wasm []byte) ([]section, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, errors.New("not a wasm module (version 1)")
	}
	var out []section
	for off := 8; off < len(wasm); {
		id := wasm[off]
		size, n := binary.Uvarint(wasm[off+1:])
		if n <= 0 || uint64(len(wasm)-off-1-n) < size {
			return nil, fmt.Errorf("section %d at %d: bad size", id, off)
		}
		start := off + 1 + n
		out = append(out, section{id, wasm[start : start+int(size)]})
		off = start + int(size)
	}
	return out, nil
}

func writeSections(secs []section) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}

// reader reads the binary format's values from a section's body.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 || v > 1<<32-1 {
		r.fail("bad u32")
		return 0
	}
	r.off += n
	return uint32(v)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail("short")
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) bytes(n uint32) []byte {
	if uint64(len(r.b)-r.off) < uint64(n) {
		r.fail("short")
		return nil
	}
	r.off += int(n)
	return r.b[r.off-int(n) : r.off]
}

func (r *reader) name() string { return string(r.bytes(r.u32())) }

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s at byte %d", msg, r.off)
	}
	r.off = len(r.b)
}

// global is one defined global: its type, mutability and init expression.
type global struct {
	typ  byte
	mut  byte
	init []byte // the expression, with its end
}

func readGlobals(body []byte) ([]global, error) {
	r := &reader{b: body}
	n := r.u32()
	gs := make([]global, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		g := global{typ: r.byte(), mut: r.byte()}
		start := r.off
		// Constant expressions as Go writes them: one const, then end.
		switch op := r.byte(); op {
		case 0x41, 0x42: // i32.const, i64.const
			for r.byte()&0x80 != 0 && r.err == nil {
			}
		case 0x43:
			r.bytes(4)
		case 0x44:
			r.bytes(8)
		default:
			r.fail(fmt.Sprintf("global %d: init opcode %#x", i, op))
		}
		if r.byte() != 0x0b {
			r.fail(fmt.Sprintf("global %d: init is not one constant", i))
		}
		g.init = body[start:r.off]
		gs = append(gs, g)
	}
	return gs, r.err
}

func importedGlobals(body []byte) (uint32, error) {
	r := &reader{b: body}
	var globals uint32
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0: // func
			r.u32()
		case 1: // table
			r.byte()
			limits(r)
		case 2: // memory
			limits(r)
		case 3:
			r.byte()
			r.byte()
			globals++
		default:
			r.fail(fmt.Sprintf("import kind %d", kind))
		}
	}
	return globals, r.err
}

func limits(r *reader) (min uint32, max uint32, hasMax bool) {
	flags := r.byte()
	min = r.u32()
	if flags&1 != 0 {
		max, hasMax = r.u32(), true
	}
	if flags > 1 {
		r.fail("shared or 64-bit memory")
	}
	return
}

type export struct {
	name string
	kind byte
	idx  uint32
}

func readExports(body []byte) ([]export, error) {
	r := &reader{b: body}
	n := r.u32()
	es := make([]export, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		es = append(es, export{name: r.name(), kind: r.byte(), idx: r.u32()})
	}
	return es, r.err
}

func writeExports(es []export) []byte {
	out := binary.AppendUvarint(nil, uint64(len(es)))
	for _, e := range es {
		out = binary.AppendUvarint(out, uint64(len(e.name)))
		out = append(out, e.name...)
		out = append(out, e.kind)
		out = binary.AppendUvarint(out, uint64(e.idx))
	}
	return out
}

// Snapshot returns wasm started: _initialize run once on a host like the
// runner's (wazero with a fixed-seed random stream and its fake clocks),
// and its state made the module's initial state. A module without
// _initialize is returned as it is.
func Snapshot(ctx context.Context, wasm []byte) ([]byte, error) {
	secs, err := readSections(wasm)
	if err != nil {
		return nil, err
	}
	var globals []global
	var exports []export
	var nImported uint32
	for _, s := range secs {
		switch s.id {
		case secImport:
			nImported, err = importedGlobals(s.body)
		case secGlobal:
			globals, err = readGlobals(s.body)
		case secExport:
			exports, err = readExports(s.body)
		case secStart:
			err = errors.New("the module has a start function")
		}
		if err != nil {
			return nil, err
		}
	}
	hasInit := false
	for _, e := range exports {
		if e.name == initialize && e.kind == 0 {
			hasInit = true
		}
	}
	if !hasInit {
		return wasm, nil
	}
	// The module to run: every defined global exported, so that its value
	// after _initialize can be read.
	probe := append([]export(nil), exports...)
	for i := range globals {
		probe = append(probe, export{name: fmt.Sprintf("\x00preinit.global.%d", i), kind: 3, idx: nImported + uint32(i)})
	}
	run := make([]section, len(secs))
	copy(run, secs)
	for i := range run {
		if run[i].id == secExport {
			run[i].body = writeExports(probe)
		}
	}
	mem, values, err := start(ctx, writeSections(run), len(globals))
	if err != nil {
		return nil, err
	}
	// The started module.
	var out []section
	for _, s := range secs {
		switch s.id {
		case secMemory:
			s.body, err = withMinimum(s.body, uint32(len(mem)/65536))
		case secGlobal:
			s.body = writeGlobals(globals, values)
		case secExport:
			kept := exports[:0:0]
			for _, e := range exports {
				if !(e.name == initialize && e.kind == 0) {
					kept = append(kept, e)
				}
			}
			s.body = writeExports(kept)
		case secData:
			s.body = dataSegments(mem)
		case secDataCount:
			continue // Go writes none; the new data section needs none
		case secCustom:
			continue // names and producers no longer describe the module's start
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return writeSections(out), nil
}

// randSeed is the runner's (wasm/runner): the same random stream.
var randSeed = [32]byte{'t', 'a', 'b', 'r', 'e', 'd', 'u', 'c', 'e'}

// start instantiates wasm, calls _initialize and returns the memory and the
// values of the n exported probe globals.
func start(ctx context.Context, wasm []byte, n int) ([]byte, []uint64, error) {
	// The runner's memory cap, and ctx's end stops a start that does not
	// end: tabreduce build starts modules it did not write.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithMemoryLimitPages(runner.DefaultMemoryLimitPages).WithCloseOnContextDone(true))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if _, err := rt.NewHostModuleBuilder("tabreduce").
		NewFunctionBuilder().WithFunc(func(uint32) {}).Export("progress").
		Instantiate(ctx); err != nil {
		return nil, nil, err
	}
	var console bytes.Buffer
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithStdout(&console).WithStderr(&console).WithRandSource(rand.NewChaCha8(randSeed)).
		WithNanotime(slowClock(), 1)
	mod, err := rt.InstantiateWithConfig(ctx, wasm, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("instantiate: %w", err)
	}
	if _, err := mod.ExportedFunction(initialize).Call(ctx); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %s", initialize, err, console.Bytes())
	}
	m := mod.ExportedMemory("memory")
	if m == nil {
		return nil, nil, errors.New("no exported memory")
	}
	buf, ok := m.Read(0, m.Size())
	if !ok {
		return nil, nil, errors.New("read memory")
	}
	values := make([]uint64, n)
	for i := range values {
		g := mod.ExportedGlobal(fmt.Sprintf("\x00preinit.global.%d", i))
		values[i] = g.Get()
	}
	return bytes.Clone(buf), values, nil
}

// slowClock is the monotonic clock _initialize sees: 1 µs a reading from
// zero. A host's clock starts again at zero for each instance of the
// snapshot (1 ms a reading, the runner's and the browser's), so the times
// the runtime noted while it started are all behind the host's from its
// second reading on.
func slowClock() func() int64 {
	var t atomic.Int64
	return func() int64 { return t.Add(1000) - 1000 }
}

func writeGlobals(gs []global, values []uint64) []byte {
	out := binary.AppendUvarint(nil, uint64(len(gs)))
	for i, g := range gs {
		out = append(out, g.typ, g.mut)
		switch g.typ {
		case byte(api.ValueTypeI32):
			out = append(out, 0x41)
			out = appendSLEB(out, int64(int32(uint32(values[i]))))
		case byte(api.ValueTypeI64):
			out = append(out, 0x42)
			out = appendSLEB(out, int64(values[i]))
		case byte(api.ValueTypeF32):
			out = append(out, 0x43)
			out = binary.LittleEndian.AppendUint32(out, uint32(values[i]))
		case byte(api.ValueTypeF64):
			out = append(out, 0x44)
			out = binary.LittleEndian.AppendUint64(out, values[i])
		}
		out = append(out, 0x0b)
	}
	return out
}

func withMinimum(body []byte, pages uint32) ([]byte, error) {
	r := &reader{b: body}
	if n := r.u32(); n != 1 {
		return nil, fmt.Errorf("%d memories", n)
	}
	_, max, hasMax := limits(r)
	if r.err != nil {
		return nil, r.err
	}
	out := []byte{1}
	if hasMax {
		out = append(out, 1)
		out = binary.AppendUvarint(out, uint64(pages))
		out = binary.AppendUvarint(out, uint64(max))
	} else {
		out = append(out, 0)
		out = binary.AppendUvarint(out, uint64(pages))
	}
	return out, nil
}

// gap is how many zero bytes may sit inside a data segment: a new
// segment's header costs about as much.
const gap = 16

// dataSegments is a data section holding mem's non-zero bytes (a fresh
// memory is zero).
func dataSegments(mem []byte) []byte {
	type seg struct{ start, end int }
	var segs []seg
	for i := 0; i < len(mem); {
		if mem[i] == 0 {
			i++
			continue
		}
		j, zeros := i, 0
		for ; j < len(mem) && zeros <= gap; j++ {
			if mem[j] == 0 {
				zeros++
			} else {
				zeros = 0
			}
		}
		end := j - zeros
		segs = append(segs, seg{i, end})
		i = j
	}
	out := binary.AppendUvarint(nil, uint64(len(segs)))
	for _, s := range segs {
		out = append(out, 0, 0x41) // active, memory 0, i32.const
		out = appendSLEB(out, int64(int32(uint32(s.start))))
		out = append(out, 0x0b)
		out = binary.AppendUvarint(out, uint64(s.end-s.start))
		out = append(out, mem[s.start:s.end]...)
	}
	return out
}

// appendSLEB appends v in signed LEB128, as the binary format's constants
// are written (binary.AppendVarint is zig-zag, not this).
func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
