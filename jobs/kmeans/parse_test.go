package main

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
)

// sameFloat reports whether a and b are the same float64, bit for bit (any
// NaN equals any NaN).
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
}

// checkParseFloat fails unless parseFloat(s) is strconv.ParseFloat(s, 64),
// value and error alike.
func checkParseFloat(t *testing.T, s string) {
	t.Helper()
	got, err := parseFloat([]byte(s))
	want, werr := strconv.ParseFloat(s, 64)
	if (err == nil) != (werr == nil) || !sameFloat(got, want) {
		t.Fatalf("parseFloat(%q) = %v, %v; strconv: %v, %v", s, got, err, want, werr)
	}
}

// FuzzParseFloat checks the fast float parser against strconv, value and
// error alike, on any text.
func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.5", "-12.375", "+3", ".5", "5.", ".", "-", "", "1e3", "0.1",
		"9007199254740993", "9007199254740992", "-1.2345678901234567", "0.0000000000000000000001", "1_0", "inf", "0x1p3", "1.2.3",
		"10.123456789012345", "-0.40184783935546875", "1.1535186767578125", "9999999999999999999", "10000000000000000000",
		"0.9999999999999999999", "1.00000000000000011102230246251565404236316680908203125", " 1", "1 ", "1,2", "1\n", "+.5", "-.0",
		"7.456541061401367e-05", "12345678.12345678", "1234567890123456789.", ".1234567890123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkParseFloat(t, s) })
}

// FuzzParseDecimal checks the parser on plain decimals of up to 20 digits
// with the point anywhere: the inputs random text seldom reaches, where
// Eisel–Lemire does the work.
func FuzzParseDecimal(f *testing.F) {
	f.Add(uint64(10123456789012345), uint8(15), false)
	f.Add(uint64(40184783935546875), uint8(17), true)
	f.Add(uint64(9007199254740993), uint8(0), false)
	f.Add(uint64(math.MaxUint64), uint8(19), false)
	f.Fuzz(func(t *testing.T, m uint64, point uint8, neg bool) {
		checkParseFloat(t, decimalText(m, int(point), neg))
	})
}

// decimalText writes m in decimal with the point before its last point%22
// digits (zero-padded), and a '-' if neg.
func decimalText(m uint64, point int, neg bool) string {
	digits := strconv.FormatUint(m, 10)
	point %= 22
	for len(digits) <= point {
		digits = "0" + digits
	}
	s := digits[:len(digits)-point] + "." + digits[len(digits)-point:]
	if neg {
		s = "-" + s
	}
	return s
}

// TestParseFloatDecimals: 200,000 random decimals of 1 to 19 digits, and
// the way %v prints the benchmark's points, parse as strconv parses them.
func TestParseFloatDecimals(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		m := r.Uint64() >> r.IntN(64)
		checkParseFloat(t, decimalText(m, r.IntN(22), r.IntN(2) == 0))
	}
	for _, x := range []float64{math.Pi, 1.0 / 3, 0.1, 2.5e-8, 123456789.123, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		checkParseFloat(t, strconv.FormatFloat(x, 'g', -1, 64))
		checkParseFloat(t, strconv.FormatFloat(x, 'f', -1, 64))
	}
}

// FuzzScanPoint: whenever scanPoint reads a line, it reads what splitting
// at commas, trimming and strconv.ParseFloat read, up to its newline.
func FuzzScanPoint(f *testing.F) {
	for _, s := range []string{"1,2\n", " -1.5 ,\t2.25\r\n3,4\n", "10.123456789012345,-0.40184783935546875", "1,,2\n", "1e5,2\n",
		"\n", "  \n", "1,2,3,4,5\n", "+.5, -.5", "1,2 x\n", "٣,4\n", "1,2\u00a0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, chunk []byte) {
		got, next, ok := scanPoint(chunk, 0, nil)
		if !ok {
			return
		}
		end := bytes.IndexByte(chunk, '\n')
		if want := end + 1; end < 0 && next != len(chunk) || end >= 0 && next != want {
			t.Fatalf("scanPoint(%q): next line at %d, want %d", chunk, next, want)
		}
		line := chunk[:next]
		line = bytes.TrimSuffix(line, []byte{'\n'})
		fields := bytes.Split(line, []byte{','})
		if len(fields) != len(got) {
			t.Fatalf("scanPoint(%q) = %v: %d numbers, the line has %d fields", chunk, got, len(got), len(fields))
		}
		for i, f := range fields {
			want, err := strconv.ParseFloat(string(bytes.TrimSpace(f)), 64)
			if err != nil || !sameFloat(got[i], want) {
				t.Fatalf("scanPoint(%q)[%d] = %v; strconv: %v, %v", chunk, i, got[i], want, err)
			}
		}
	})
}

// TestPow10Table: each entry is 10^e's 128-bit mantissa rounded down.
func TestPow10Table(t *testing.T) {
	for i, p := range pow10x128 {
		e := minPow10 + i
		// 10^e = 2^k · M / 2^127 with M in [2^127, 2^128): M = ⌊10^e · 2^(127-k)⌋.
		num, den := big.NewInt(1), big.NewInt(1)
		ten := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(e, -e))), nil)
		if e < 0 {
			den = ten
		} else {
			num = ten
		}
		var m *big.Int
		for shift := -200; shift <= 200; shift++ {
			n, d := new(big.Int).Set(num), new(big.Int).Set(den)
			if shift > 0 {
				n.Lsh(n, uint(shift))
			} else {
				d.Lsh(d, uint(-shift))
			}
			if q := new(big.Int).Quo(n, d); q.BitLen() == 128 {
				m = q
				break
			}
		}
		want := [2]uint64{new(big.Int).Rsh(m, 64).Uint64(), new(big.Int).And(m, new(big.Int).SetUint64(math.MaxUint64)).Uint64()}
		if p != want {
			t.Errorf("pow10x128 for 1e%d = %#x, want %#x", e, p, want)
		}
	}
}
