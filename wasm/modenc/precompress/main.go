// Command precompress writes the compressed forms of job modules next to
// them, for `make jobs`: for each FILE.wasm given, FILE.wasm.br (brotli at
// its best quality) and FILE.wasm.gz. The binary embeds them with the
// modules, so that a server serves its built-in jobs compressed without
// spending seconds of CPU on each at start-up.
package main

import (
	"fmt"
	"os"

	"github.com/tabreduce/tabreduce/wasm/modenc"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: precompress FILE.wasm...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := precompress(path); err != nil {
			fmt.Fprintln(os.Stderr, "precompress:", err)
			os.Exit(1)
		}
	}
}

func precompress(path string) error {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, enc := range modenc.Encodings {
		z, err := modenc.Encode(wasm, enc, modenc.BuildQuality)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out := path + modenc.Suffix(enc)
		if err := os.WriteFile(out+".tmp", z, 0o644); err != nil {
			return err
		}
		if err := os.Rename(out+".tmp", out); err != nil {
			return err
		}
	}
	return nil
}
