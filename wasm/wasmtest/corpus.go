package wasmtest

import (
	"math/rand"
)

// ZipfText returns about size bytes of text whose words follow a Zipf
// distribution (s = 1.1) over a 100,000-word vocabulary, in lines of about
// 80 bytes, with some capitals and punctuation: the benchmarks' corpus. The
// same size gives the same bytes on every run.
func ZipfText(size int) []byte {
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
	out := make([]byte, 0, size+100)
	line := 0
	for len(out) < size {
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
	return out
}
