// Package jobs holds the example jobs (one package main per directory, built
// to jobs/<name>.wasm by `make jobs`) and embeds the built modules so the
// server can offer them as built-ins.
package jobs

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/tabreduce/tabreduce/wasm/modenc"
)

// The pattern matches README.md as well as the *.wasm files, so that it
// matches something on a fresh clone where no module has been built yet
// (a //go:embed pattern that matches nothing fails the build).
//
//go:embed *.[mw][da]*
var files embed.FS

// names are the built-in jobs, whether built or not. The reactors are Go
// (jobs/<name>/main.go); wordcount-cmd is a Go WASI command and
// wordcount-c a C one (jobs/<name>/main.c, built where clang is), both
// mappers for the reducer sum; kmeans-c is a C mapper for the reducer
// kmeans; wordcount-as is a reactor in AssemblyScript
// (jobs/<name>/assembly/index.ts, built where npm is).
var names = []string{"grep", "invertedindex", "kmeans", "kmeans-c", "noop", "pi", "primes", "sum", "wordcount", "wordcount-as", "wordcount-c", "wordcount-cmd"}

// ErrNotBuilt is returned by Builtin when the job exists but its module was
// not built before this binary was.
var ErrNotBuilt = errors.New("not built: run make jobs")

// ErrUnknown is returned by Builtin for a name that is not a built-in job.
var ErrUnknown = errors.New("no such built-in job")

// Names returns the names of the built-in jobs, sorted.
func Names() []string { return slices.Clone(names) }

// Builtin returns the wasm bytes of the named built-in job.
func Builtin(name string) ([]byte, error) {
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("built-in job %q: %w (have %s)", name, ErrUnknown, strings.Join(names, ", "))
	}
	b, err := files.ReadFile(name + ".wasm")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("built-in job %s is %w", name, ErrNotBuilt)
	}
	return b, err
}

// Modules returns the wasm bytes of every built-in job compiled into this
// binary, by name, and the names of those that were not built. The server
// and the native worker take them from here: nothing in the engine imports
// this package.
func Modules() (built map[string][]byte, missing []string) {
	built = map[string][]byte{}
	for _, name := range names {
		b, err := files.ReadFile(name + ".wasm")
		if err != nil {
			missing = append(missing, name)
			continue
		}
		built[name] = b
	}
	return built, missing
}

// Encodings returns the compressed forms `make jobs` made of each built-in
// module compiled into this binary: name → content coding ("br", "gzip") →
// bytes. A server serves them to clients that accept them; it checks that
// each decodes to its module before it does.
func Encodings() map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for _, name := range names {
		for _, enc := range modenc.Encodings {
			b, err := files.ReadFile(name + ".wasm" + modenc.Suffix(enc))
			if err != nil {
				continue
			}
			if out[name] == nil {
				out[name] = map[string][]byte{}
			}
			out[name][enc] = b
		}
	}
	return out
}

// SHAs returns the sha256 (hex) of every built-in module compiled into this
// binary: a worker runs modules with these hashes as trusted code.
func SHAs() map[string]bool {
	built, _ := Modules()
	out := make(map[string]bool, len(built))
	for _, b := range built {
		sum := sha256.Sum256(b)
		out[hex.EncodeToString(sum[:])] = true
	}
	return out
}

// Load returns the module named by ref: a path to a .wasm file if ref ends in
// ".wasm" or contains a path separator, else a built-in job's name.
func Load(ref string) ([]byte, error) {
	if strings.HasSuffix(ref, ".wasm") || strings.ContainsRune(ref, '/') || strings.ContainsRune(ref, os.PathSeparator) {
		b, err := os.ReadFile(ref)
		if err != nil {
			return nil, fmt.Errorf("job module: %w", err)
		}
		return b, nil
	}
	return Builtin(ref)
}
