package jobs

import (
	"errors"
	"os"
	"slices"
	"testing"
)

func TestBuiltin(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			if !slices.ContainsFunc([]string{"/main.go", "/main.c", "/assembly/index.ts"}, func(src string) bool { _, err := os.Stat(name + src); return err == nil }) {
				t.Fatalf("built-in %s has no source", name)
			}
			b, err := Builtin(name)
			_, statErr := os.Stat(name + ".wasm")
			switch {
			case statErr == nil && err != nil:
				t.Fatalf("module is built but Builtin fails: %v", err)
			case statErr != nil && !errors.Is(err, ErrNotBuilt):
				t.Fatalf("module is not built; err = %v, want ErrNotBuilt", err)
			case err == nil && string(b[:4]) != "\x00asm":
				t.Fatalf("not a wasm module: % x", b[:4])
			}
		})
	}
	if _, err := Builtin("nope"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Builtin(nope) err = %v, want ErrUnknown", err)
	}
}

// Every built-in job has its one-line description in README.md, and the
// README describes no job that is not built in.
func TestSummaries(t *testing.T) {
	s := Summaries()
	for _, name := range Names() {
		if len(s[name]) < 10 {
			t.Errorf("README.md has no \"- `%s` — …\" line describing it (got %q)", name, s[name])
		}
		delete(s, name)
	}
	for name := range s {
		t.Errorf("README.md describes %q, which is not a built-in job", name)
	}
}
