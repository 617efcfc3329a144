package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
)

// The decimals kmeans reads are parsed here, fast under wazero, where
// strconv.ParseFloat costs about 20× what it does natively. A plain decimal
// ("-12.375", at most 19 digits, no exponent) is read in one pass, eight
// digits at a time where it can, and converted exactly: by one division
// when the digits fit in 53 bits (Clinger's fast path), else by the
// Eisel–Lemire algorithm over a table of 128-bit powers of ten. Whatever
// is not such a decimal, and the rare value Eisel–Lemire cannot round
// with certainty, goes to strconv.ParseFloat. Every answer is the one
// strconv.ParseFloat gives (fuzzed: FuzzParseFloat, FuzzScanPoint).

// maxDigits is the most digits a decimal may have to take the fast path:
// 19 always fit in a uint64.
const maxDigits = 19

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat returns what strconv.ParseFloat(b, 64) returns.
func parseFloat(b []byte) (float64, error) {
	// A field that starts and ends as a plain decimal does, and that
	// scanPoint reads whole as one number, is one.
	if n := len(b); n > 0 && startsDecimal(b[0]) && (b[n-1]-'0' < 10 || b[n-1] == '.') {
		var one [1]float64
		if dst, next, ok := scanPoint(b, 0, one[:0]); ok && next == n && len(dst) == 1 {
			return dst[0], nil
		}
	}
	return strconv.ParseFloat(string(b), 64)
}

func startsDecimal(c byte) bool { return c-'0' < 10 || c == '-' || c == '+' || c == '.' }

// scanPoint reads the point on the line at chunk[i:] into dst: plain
// decimals (an optional sign, digits with at most one '.', at least one
// digit and at most maxDigits, no exponent) separated by commas, with
// spaces or tabs around them, up to and including the line's '\n' (or the
// chunk's end). It returns the index of the next line, or ok false if the
// line is not of that plain form (it may still be a valid point:
// parsePoint decides). It is one function, and it reads digits eight bytes
// per step with no branch per digit: under wazero, as in Go's wasm code
// generally, calls and branches cost far more than arithmetic.
func scanPoint(chunk []byte, i int, dst []float64) (_ []float64, next int, ok bool) {
	for {
		for i < len(chunk) && (chunk[i] == ' ' || chunk[i] == '\t') {
			i++
		}
		neg := false
		if i < len(chunk) && (chunk[i] == '-' || chunk[i] == '+') {
			neg = chunk[i] == '-'
			i++
		}
		// The digits, before and after the point, as one integer m.
		var m uint64
		start, dot := i, -1
		for {
			if i+8 <= len(chunk) {
				n, v := digitRun(binary.LittleEndian.Uint64(chunk[i:]))
				m = m*pow10u[n] + v
				i += n
				if n == 8 {
					continue
				}
			} else {
				for ; i < len(chunk) && chunk[i]-'0' < 10; i++ {
					m = m*10 + uint64(chunk[i]-'0')
				}
			}
			if dot < 0 && i < len(chunk) && chunk[i] == '.' {
				dot = i
				i++
				continue
			}
			break
		}
		digits, frac := i-start, 0
		if dot >= 0 {
			digits--
			frac = i - dot - 1
		}
		if digits == 0 || digits > maxDigits {
			return dst, 0, false // m may have overflowed: strconv judges
		}
		var f float64
		switch {
		case m == 0:
		case m <= 1<<53: // frac ≤ maxDigits < len(pow10)
			f = float64(m) / pow10[frac]
		default:
			if f, ok = eiselLemire(m, -frac); !ok {
				return dst, 0, false
			}
		}
		if neg {
			f = -f
		}
		dst = append(dst, f)
		for i < len(chunk) && (chunk[i] == ' ' || chunk[i] == '\t' || chunk[i] == '\r') {
			i++
		}
		switch {
		case i == len(chunk):
			return dst, i, true
		case chunk[i] == '\n':
			return dst, i + 1, true
		case chunk[i] != ',':
			return dst, 0, false
		}
		i++
	}
}

// pow10u holds 10^n for the n digits a word can add.
var pow10u = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// digitRun returns how many of x's bytes, from the lowest (the first in
// memory), are ASCII digits before the first that is not, and the number
// they spell.
func digitRun(x uint64) (n int, v uint64) {
	// A byte is a digit iff its high nibble is 3 and adding 6 leaves it 3.
	// Adding 6 can carry into the next byte only out of a byte ≥ 0xFA,
	// which is not a digit: so the first flagged byte is the first
	// non-digit.
	const hi, three, six = 0xF0F0F0F0F0F0F0F0, 0x3030303030303030, 0x0606060606060606
	nd := (x&hi ^ three) | ((x+six)&hi ^ three)
	n = bits.TrailingZeros64(nd) >> 3 // 8 when every byte is a digit
	// The run's digit values, moved to the word's top bytes: the bytes
	// below become leading zeros (the shift by 64 when n is 0 gives 0).
	t := (x - three) << (64 - 8*uint(n))
	return n, eightDigitsValue(t)
}

// eightDigitsValue is the number that the eight digit values (0–9) in
// x's bytes spell, the lowest byte the most significant digit: pairs,
// then quads, then the whole, in three multiplications.
func eightDigitsValue(x uint64) uint64 {
	x = (x * 10) + (x >> 8) // each even byte: the pair it starts
	return ((x&0x000000FF000000FF)*(100+(1000000<<32)) + ((x>>16)&0x000000FF000000FF)*(1+(10000<<32))) >> 32
}

// The range of pow10x128: a decimal of at most maxDigits digits, all of
// them after the point, is m × 10^-19.
const (
	minPow10 = -maxDigits
	maxPow10 = 0
)

// pow10x128[e - minPow10] is 10^e as a 128-bit mantissa {high, low}
// scaled into [2^127, 2^128), rounded down (TestPow10Table checks each
// against math/big).
var pow10x128 = [...][2]uint64{
	{0xEC1E4A7DB69561A5, 0x2B31E9E3D06C32E5}, // 1e-19
	{0x9392EE8E921D5D07, 0x3AFF322E62439FCF}, // 1e-18
	{0xB877AA3236A4B449, 0x09BEFEB9FAD487C2}, // 1e-17
	{0xE69594BEC44DE15B, 0x4C2EBE687989A9B3}, // 1e-16
	{0x901D7CF73AB0ACD9, 0x0F9D37014BF60A10}, // 1e-15
	{0xB424DC35095CD80F, 0x538484C19EF38C94}, // 1e-14
	{0xE12E13424BB40E13, 0x2865A5F206B06FB9}, // 1e-13
	{0x8CBCCC096F5088CB, 0xF93F87B7442E45D3}, // 1e-12
	{0xAFEBFF0BCB24AAFE, 0xF78F69A51539D748}, // 1e-11
	{0xDBE6FECEBDEDD5BE, 0xB573440E5A884D1B}, // 1e-10
	{0x89705F4136B4A597, 0x31680A88F8953030}, // 1e-9
	{0xABCC77118461CEFC, 0xFDC20D2B36BA7C3D}, // 1e-8
	{0xD6BF94D5E57A42BC, 0x3D32907604691B4C}, // 1e-7
	{0x8637BD05AF6C69B5, 0xA63F9A49C2C1B10F}, // 1e-6
	{0xA7C5AC471B478423, 0x0FCF80DC33721D53}, // 1e-5
	{0xD1B71758E219652B, 0xD3C36113404EA4A8}, // 1e-4
	{0x83126E978D4FDF3B, 0x645A1CAC083126E9}, // 1e-3
	{0xA3D70A3D70A3D70A, 0x3D70A3D70A3D70A3}, // 1e-2
	{0xCCCCCCCCCCCCCCCC, 0xCCCCCCCCCCCCCCCC}, // 1e-1
	{0x8000000000000000, 0x0000000000000000}, // 1e0
}

// eiselLemire returns m × 10^e10 correctly rounded for m > 0 and e10 in
// the table's range, or false when the 128-bit product leaves the rounding
// in doubt (Lemire, "Number Parsing at a Gigabyte per Second", 2021).
func eiselLemire(m uint64, e10 int) (float64, bool) {
	if e10 < minPow10 || e10 > maxPow10 {
		return 0, false
	}
	p := pow10x128[e10-minPow10]
	lz := bits.LeadingZeros64(m)
	m <<= lz
	// The binary exponent of the result: 10^e10 ≈ 2^(e10·log2 10), with
	// log2 10 ≈ 217706 / 2^16.
	e2 := uint64(217706*e10>>16+64+1023) - uint64(lz)
	hi, lo := bits.Mul64(m, p[0])
	if hi&0x1FF == 0x1FF && lo+m < m {
		// The low bits may carry into the ones kept: take the power's
		// next 64 bits into account.
		hi2, lo2 := bits.Mul64(m, p[1])
		mlo := lo + hi2
		mhi := hi
		if mlo < lo {
			mhi++
		}
		if mhi&0x1FF == 0x1FF && mlo+1 == 0 && lo2+m < m {
			return 0, false
		}
		hi, lo = mhi, mlo
	}
	top := hi >> 63
	mant := hi >> (top + 9)
	e2 -= 1 ^ top
	if lo == 0 && hi&0x1FF == 0 && mant&3 == 1 {
		return 0, false // exactly halfway: strconv settles it
	}
	mant += mant & 1
	mant >>= 1
	if mant>>53 > 0 {
		mant >>= 1
		e2++
	}
	if e2-1 >= 0x7FF-1 {
		return 0, false
	}
	return math.Float64frombits(e2<<52 | mant&(1<<52-1)), true
}

// parsePoint appends the comma-separated numbers of line to dst: the
// general path, for any line scanPoint does not take.
func parsePoint(dst []float64, line []byte) ([]float64, error) {
	for {
		f, rest, more := bytes.Cut(line, []byte{','})
		x, err := parseFloat(bytes.TrimSpace(f))
		if err != nil {
			return dst, err
		}
		dst = append(dst, x)
		if !more {
			return dst, nil
		}
		line = rest
	}
}
