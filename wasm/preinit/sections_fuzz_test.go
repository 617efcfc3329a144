package preinit

import (
	"bytes"
	"testing"
)

// The section readers take any bytes without panicking, and the sections
// they read write back as the same sections.
func FuzzReadModule(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	// Imports (one func, one global), a memory with a maximum, two globals,
	// two exports and a data segment.
	f.Add([]byte("\x00asm\x01\x00\x00\x00" +
		"\x02\x0b\x02\x01a\x01b\x00\x00\x01a\x01c\x03\x7f\x00" +
		"\x05\x04\x01\x01\x01\x02" +
		"\x06\x0b\x02\x7f\x01\x41\x7f\x0b\x7e\x00\x42\x10\x0b" +
		"\x07\x11\x02\x06memory\x02\x00\x0b_initialize\x00\x00" +
		"\x0b\x07\x01\x00\x41\x00\x0b\x01\x2a"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x06\x05\x01\x7f\x01\x00\x0b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		secs, err := readSections(b)
		if err != nil {
			return
		}
		// (Sizes may be written in more bytes than they need: compare the
		// sections, not the bytes.)
		again, err := readSections(writeSections(secs))
		if err != nil || len(again) != len(secs) {
			t.Fatalf("written back: %d sections, err %v; want %d", len(again), err, len(secs))
		}
		for i := range secs {
			if again[i].id != secs[i].id || !bytes.Equal(again[i].body, secs[i].body) {
				t.Fatalf("section %d written back differs", i)
			}
		}
		for _, s := range secs {
			switch s.id {
			case secImport:
				_, _ = importedGlobals(s.body)
			case secGlobal:
				if gs, err := readGlobals(s.body); err == nil {
					_ = writeGlobals(gs, make([]uint64, len(gs)))
				}
			case secExport:
				if es, err := readExports(s.body); err == nil {
					_ = writeExports(es)
				}
			case secMemory:
				_, _ = withMinimum(s.body, 1)
			}
		}
	})
}
