// Package wasm carries the source of the job SDK — packages mr (what a job
// is written against), abi (the module's wire format) and driver (the
// split, shuffle and sort that mr.RunLocal shares with hosts) — so that
// `tabreduce new` can write it into a job project, which then builds and
// tests with no network. The subdirectories hold those packages, the wazero
// runner, the native worker and the worker protocol.
package wasm

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// The SDK's packages: their Go files, tests left out when written.
//
//go:embed ABI.md mr/*.go abi/*.go driver/*.go
var sdk embed.FS

// SDKModule is the module path of the SDK's packages.
const SDKModule = "github.com/tabreduce/tabreduce"

// SDKGoVersion is the Go release the SDK needs: the go directive of the
// repository's go.mod, without its patch level.
const SDKGoVersion = "1.26"

// WriteSDK writes the SDK as a module of its own into dir (created if
// missing): a go.mod for SDKModule with no requirements, the packages'
// non-test Go files under wasm/, and ABI.md. A job project's go.mod points
// at dir with a replace directive. It returns the files written, relative
// to dir.
func WriteSDK(dir, version string) ([]string, error) {
	readme := fmt.Sprintf("# The tabreduce job SDK (%s)\n\n"+
		"Written by `tabreduce new` so that this job builds with no network: the packages\n"+
		"`wasm/mr` (write jobs against it), `wasm/abi` and `wasm/driver` of %s.\n"+
		"The module's ABI is in wasm/ABI.md. Replace this directory with the SDK of a newer\n"+
		"tabreduce by running `tabreduce new` again elsewhere and copying its sdk/.\n", version, SDKModule)
	files := map[string][]byte{
		"go.mod":    fmt.Appendf(nil, "module %s\n\ngo %s\n", SDKModule, SDKGoVersion),
		"README.md": []byte(readme),
	}
	err := fs.WalkDir(sdk, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := sdk.ReadFile(p)
		if err != nil {
			return err
		}
		files[path.Join("wasm", p)] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
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
