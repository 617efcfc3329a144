package main

import (
	"math/rand"
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

// zipf64 returns 64 MB of text whose words follow a Zipf distribution (s =
// 1.1) over a 100,000-word vocabulary, in lines of about 80 bytes, with
// some capitals and punctuation. It is the same bytes on every run.
func zipf64() []byte {
	zipfOnce.Do(func() {
		rng := rand.New(rand.NewSource(1))
		vocab := make([][]byte, 100_000)
		for i := range vocab {
			w := make([]byte, 2+rng.Intn(9))
			for j := range w {
				w[j] = byte('a' + rng.Intn(26))
			}
			if i%10 == 0 {
				w[0] -= 'a' - 'A'
			}
			vocab[i] = w
		}
		z := rand.NewZipf(rng, 1.1, 1, uint64(len(vocab)-1))
		out := make([]byte, 0, 64<<20+100)
		line := 0
		for len(out) < 64<<20 {
			out = append(out, vocab[z.Uint64()]...)
			line++
			switch {
			case line%13 == 0:
				out = append(out, ".\n"...)
			case line%7 == 0:
				out = append(out, ", "...)
			default:
				out = append(out, ' ')
			}
		}
		zipfText = out
	})
	return zipfText
}

// nativeWordcount is what a Go programmer writes without us: the same
// tokenizer and a map[string]int.
func nativeWordcount(text []byte) map[string]int {
	counts := map[string]int{}
	scanWords(text, nil, func(w []byte) { counts[string(w)]++ })
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
