// Command snapshot starts reactor modules at build time, for `make jobs`:
// each FILE.wasm given is replaced by the module its _initialize leaves
// (preinit.Snapshot). A module without _initialize is left as it is.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tabreduce/tabreduce/wasm/preinit"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: snapshot FILE.wasm...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := snapshot(path); err != nil {
			fmt.Fprintln(os.Stderr, "snapshot:", err)
			os.Exit(1)
		}
	}
}

func snapshot(path string) error {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	started, err := preinit.Snapshot(context.Background(), wasm)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.WriteFile(path+".tmp", started, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
