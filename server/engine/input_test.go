package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// splitFile must cut exactly where the in-process driver does, so a job
// gives the same output through the server as through tabreduce run.
func TestSplitFileMatchesDriver(t *testing.T) {
	inputs := map[string]string{
		"lines":             "alpha\nbeta\ngamma\ndelta\n",
		"no final newline":  "alpha\nbeta\ngamma",
		"long line":         strings.Repeat("x", 100) + "\nshort\n" + strings.Repeat("y", 50),
		"empty lines":       "\n\n\na\n\n",
		"one line":          "single",
		"newline only":      "\n",
		"chunk on newlines": "abc\ndef\nghi\n",
	}
	for name, in := range inputs {
		for _, size := range []int64{1, 2, 3, 4, 5, 7, 16, 1 << 20} {
			path := filepath.Join(t.TempDir(), "in")
			if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := splitFile(path, 2, int64(len(in)), size, 1<<30, 1000)
			if err != nil {
				t.Fatalf("%s, size %d: %v", name, size, err)
			}
			want := abi.SplitChunks([]byte(in), int(size))
			if len(got) != len(want) {
				t.Errorf("%s, size %d: %d chunks, want %d", name, size, len(got), len(want))
				continue
			}
			for i, c := range want {
				g := got[i]
				if g.File != 2 || g.Offset != int64(c.Offset) || g.Length != int64(len(c.Data)) || g.Global != 1000+c.Offset {
					t.Errorf("%s, size %d, chunk %d: got %+v, want offset %d length %d", name, size, i, g, c.Offset, len(c.Data))
				}
			}
		}
	}
}
