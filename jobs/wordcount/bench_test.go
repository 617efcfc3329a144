package main

import (
	"sync"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/mr"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

var (
	zipfOnce sync.Once
	zipfText []byte
)

// zipf64 returns the benchmarks' 64 MB Zipf corpus (wasmtest.ZipfText),
// built once.
func zipf64() []byte {
	zipfOnce.Do(func() { zipfText = wasmtest.ZipfText(64 << 20) })
	return zipfText
}

// nativeWordcount is what a Go programmer writes without us: the same
// tokenizer and a map[string]int.
func nativeWordcount(text []byte) map[string]int {
	counts := map[string]int{}
	scanWords(text, nil, nil, func(w, _ []byte) { counts[string(w)]++ })
	return counts
}

// BenchmarkWordcountVsNative: the wordcount module under wazero (whole job,
// 4 MiB chunks, one task at a time) against nativeWordcount on 64 MB of Zipf
// text; trusted (no termination checks) and interruptible.
func BenchmarkWordcountVsNative(b *testing.B) {
	input := zipf64()
	for _, mode := range []struct {
		name          string
		interruptible bool
	}{{"trusted", false}, {"interruptible", true}} {
		b.Run(mode.name, func(b *testing.B) {
			wasmtest.VersusNative(b, pkg, input, nil, driver.Options{}, mode.interruptible, func(in []byte) { nativeWordcount(in) })
		})
	}
}

// BenchmarkWordcountRunLocal: the job's native twin through mr.RunLocal, to
// show what the SDK path itself costs without wasm.
func BenchmarkWordcountRunLocal(b *testing.B) {
	input := zipf64()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		if _, err := mr.RunLocal(Job, input, nil); err != nil {
			b.Fatal(err)
		}
	}
}
