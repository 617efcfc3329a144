// Package wasm carries the source of the job SDK — package mr (what a job
// is written against) and the packages of ours it imports (abi, the
// module's wire format; driver, the split, shuffle and sort that
// mr.RunLocal shares with hosts; their internal helpers) — so that
// `tabreduce new` can write it into a job project, which then builds and
// tests with no network. The subdirectories hold those packages, the wazero
// runner, the native worker and the worker protocol.
package wasm

import (
	"embed"
	"fmt"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The packages the SDK may need. WriteSDK writes mr and what it imports of
// them, their tests left out.
//
//go:embed ABI.md mr/*.go abi/*.go driver/*.go internal
var sdk embed.FS

// SDKModule is the module path of the SDK's packages.
const SDKModule = "github.com/tabreduce/tabreduce"

// SDKGoVersion is the Go release the SDK needs: the go directive of the
// repository's go.mod, without its patch level.
const SDKGoVersion = "1.26"

// sdkRoot is the package the SDK is written for; everything else is
// written because it imports it, directly or not.
const sdkRoot = "mr"

// WriteSDK writes the SDK as a module of its own into dir (created if
// missing): a go.mod for SDKModule with no requirements, package mr and the
// packages of ours it imports (non-test Go files, under wasm/), ABI.md and
// a README naming version. A job project's go.mod points at dir with a
// replace directive. It returns the files written, relative to dir.
func WriteSDK(dir, version string) ([]string, error) {
	files, err := sdkFiles()
	if err != nil {
		return nil, err
	}
	readme := fmt.Sprintf("# The tabreduce job SDK (%s)\n\n"+
		"Written by `tabreduce new` so that this job builds with no network: package\n"+
		"`wasm/mr` of %s (write jobs against it) and what it imports.\n"+
		"The module's ABI is in wasm/ABI.md. To move to a newer SDK, run a newer\n"+
		"`tabreduce new` elsewhere and copy its sdk/ over this one.\n", version, SDKModule)
	files["go.mod"] = fmt.Appendf(nil, "module %s\n\ngo %s\n", SDKModule, SDKGoVersion)
	files["README.md"] = []byte(readme)
	var written []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		full := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(full, files[name], 0o644); err != nil {
			return written, err
		}
		written = append(written, name)
	}
	return written, nil
}

// sdkFiles returns the files of mr and of every package of ours it imports,
// by path under the SDK module (wasm/mr/job.go), with ABI.md. An import
// of ours that is not embedded is an error: the SDK would not build.
func sdkFiles() (map[string][]byte, error) {
	abiDoc, err := sdk.ReadFile("ABI.md")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"wasm/ABI.md": abiDoc}
	todo, seen := []string{sdkRoot}, map[string]bool{sdkRoot: true}
	for len(todo) > 0 {
		pkg := todo[0]
		todo = todo[1:]
		entries, err := sdk.ReadDir(pkg)
		if err != nil {
			return nil, fmt.Errorf("SDK package %s is not embedded: %w", pkg, err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := sdk.ReadFile(pkg + "/" + name)
			if err != nil {
				return nil, err
			}
			files[path.Join("wasm", pkg, name)] = src
			imports, err := ourImports(name, src)
			if err != nil {
				return nil, err
			}
			for _, imp := range imports {
				if !seen[imp] {
					seen[imp] = true
					todo = append(todo, imp)
				}
			}
		}
	}
	return files, nil
}

// ourImports returns the SDK packages a Go file imports, as paths under
// wasm/ (abi, internal/errfmt).
func ourImports(name string, src []byte) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(p, SDKModule+"/wasm/"); ok {
			out = append(out, rest)
		} else if strings.HasPrefix(p, SDKModule+"/") {
			return nil, fmt.Errorf("%s imports %s, outside wasm/: the SDK cannot carry it", name, p)
		}
	}
	return out, nil
}
