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

// ClusterPoints returns n 2-D points scattered (±1.5) around three
// centres, (0, 0), (10, 10) and (-5, 8), in turn: the k-means job's input.
// The same n gives the same points on every run.
func ClusterPoints(n int) [][2]float64 {
	centres := [][2]float64{{0, 0}, {10, 10}, {-5, 8}}
	out := make([][2]float64, n)
	s := uint32(7)
	next := func() float64 { s = s*1664525 + 1013904223; return float64(s>>8)/float64(1<<24) - 0.5 }
	for i := range out {
		c := centres[i%3]
		out[i] = [2]float64{c[0] + 3*next(), c[1] + 3*next()}
	}
	return out
}
