package main

import (
	"encoding/binary"
	"math"
	"math/bits"
	"runtime"
	"unsafe"
)

// The 2-D hot path: a line of two plain decimals, read by one function
// with no call, the nearest centroid and the sums in place. It comes in
// two forms, which give the same results (checkAssign2Forms holds them
// together on every chunk the tests and the fuzzer try).
//
// Under Go's wasm code generator every taken jump goes through the
// function's dispatch loop (set a block number, branch to the loop's
// head, br_table), and every call stores the live values to the stack in
// linear memory and loads them back. So assign2Masks, the form a module
// runs, has one branch a line besides its loops: each number's digits in
// four words whose runs are combined by masks, not by a loop or a
// condition; the conversion both ways at once (Clinger's division, and
// Eisel–Lemire's first product), one of them kept by a mask; every reason
// to refuse the line (a form it does not read, or any doubt in the
// rounding) gathered in one flag and tested once a line; the nearest
// centroid chosen by masks too. Natively, where a predicted branch costs
// less than the masks' extra arithmetic, assign2Branches, the same steps
// with branches, runs the benchmark's native twin about 1.25× as fast.
// A refused line stops either at its start, and the general path
// (scanPoint, parsePoint) reads it.

// assign2 adds each line of chunk[pos:] that is a 2-D point of plain
// decimals, "[-]digits[.digits],[-]digits[.digits]\n" (at most 7 digits
// before a point and 19 in all, no spaces), to counts and sums, the point
// going to its nearest centroid among cs as nearest would choose. It
// stops at the first line of any other form, or that leaves less than
// plainWindow bytes, and returns that line's start and how many points it
// added.
func assign2(chunk []byte, pos int, cs []float64, counts []int64, sums []float64) (next int, added int64) {
	if runtime.GOARCH == "wasm" {
		return assign2Masks(chunk, pos, cs, counts, sums)
	}
	return assign2Branches(chunk, pos, cs, counts, sums)
}

// plainWindow is how many bytes must remain from a line's start for
// assign2 to read it. A line it accepts is at most 44 bytes (two numbers
// of a sign, 19 digits and a point), but assign2Masks reads both numbers
// before it judges either: the first, whatever it holds, spans at most 35 bytes
// with its separator (a sign, 8 digits, a point, 24 digits), and the last
// byte the second one's reading touches is at most 69 bytes from the
// line's start.
const plainWindow = 96

// pow10w holds 10^n for the n digits a word can add; its length keeps
// the index in range without a check (n&15).
var pow10w = [16]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// pow10f holds the powers of ten float64 represents exactly, padded so
// that an index masked with 31 needs no check.
var pow10f = [32]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// pow10hi[19-frac] is the high word of pow10x128's 10^-frac, padded so
// that an index masked with 31 needs no check (a refused number may
// compute any index).
var pow10hi = func() (t [32]uint64) {
	for i, p := range pow10x128 {
		t[i] = p[0]
	}
	return t
}()

// isZero is 1 if x is 0, else 0; nonZero the reverse. Neither branches.
func isZero(x uint64) uint64  { return ((x | -x) >> 63) ^ 1 }
func nonZero(x uint64) uint64 { return (x | -x) >> 63 }

// assign2Masks is assign2 for wasm.
func assign2Masks(chunk []byte, pos int, cs []float64, counts []int64, sums []float64) (next int, added int64) {
	for len(chunk)-pos >= plainWindow {
		// Every byte read below is within plainWindow of pos: read
		// without a bounds check each.
		line := unsafe.Pointer(&chunk[pos])
		var xy [2]float64
		var bad uint64 // not 0: the line is not assign2's to read
		p := 0         // from the line's start
		for c := range 2 {
			neg := isZero(uint64(at(line, p) ^ '-'))
			p += int(neg)
			// The digits before the point, then up to three words after it.
			n1, v1 := digitRun(word(line, p))
			dot := isZero(uint64(at(line, p+n1) ^ '.'))
			q := p + n1 + 1
			n2, v2 := digitRun(word(line, q))
			n3, v3 := digitRun(word(line, q+8))
			n4, v4 := digitRun(word(line, q+16))
			keep := -dot // the words after a point count, and only while full
			n2, v2 = n2&int(keep), v2&keep
			keep = -(uint64(n2) >> 3)
			n3, v3 = n3&int(keep), v3&keep
			keep = -(uint64(n3) >> 3)
			n4, v4 = n4&int(keep), v4&keep
			frac := n2 + n3 + n4
			digits := n1 + frac
			end := p + digits + int(dot)
			term := uint64(',') ^ uint64(c)*(','^'\n')
			bad |= uint64(n1)>>3 | isZero(uint64(digits)) | uint64(maxDigits-digits)>>63 | nonZero(uint64(at(line, end))^term)
			m := ((v1*pow10w[n2&15]+v2)*pow10w[n3&15]+v3)*pow10w[n4&15] + v4
			// Clinger: exact when m fits in 53 bits.
			f := math.Float64bits(float64(m) / pow10f[frac&31])
			// Eisel–Lemire for larger m (scanPoint's eiselLemire without
			// its second product: a doubt refuses the line instead).
			lz := bits.LeadingZeros64(m)
			mm := m << (lz & 63)
			hi, lo := bits.Mul64(mm, pow10hi[(maxDigits-frac)&31])
			top := hi >> 63
			mant := hi >> (top + 9)
			e2 := uint64(217706*-frac>>16+64+1023) - uint64(lz) - (1 ^ top)
			_, carry := bits.Add64(lo, mm, 0)
			doubt := isZero(hi&0x1FF^0x1FF)&carry | isZero(lo)&isZero(hi&0x1FF)&isZero(mant&3^1)
			mant += mant & 1
			mant >>= 1
			s := mant >> 53
			mant >>= s
			big := -(nonZero(m>>53) & nonZero(m^1<<53)) // all ones when m > 2^53
			bad |= doubt & big
			f = f&^big | ((e2+s)<<52|mant&(1<<52-1))&big
			xy[c] = math.Float64frombits(f | neg<<63)
			p = end + 1
		}
		if bad != 0 {
			return pos, added
		}
		// The nearest centroid, as nearest2 chooses it, with no branch but
		// the loop's (nearest2 in this form would be too big to inline): a
		// square distance is not negative, so its bits (the sign cleared,
		// for a NaN's sake) order as its value does, a NaN's above every
		// number's and all below 2^63, where the search starts so that
		// centroid 0 is taken first. A NaN distance to centroid 0 keeps
		// it, as in nearest2: its bits become 0, which none is below.
		x, y := xy[0], xy[1]
		best, bestD := 0, uint64(1<<63)
		for i := 0; i+1 < len(cs); i += 2 {
			dx, dy := x-cs[i], y-cs[i+1]
			d := math.Float64bits(float64(dx*dx)+float64(dy*dy)) &^ (1 << 63)
			closer := -((d - bestD) >> 63) // all ones when d < bestD
			best ^= (best ^ i) & int(closer)
			bestD ^= (bestD ^ d) & closer
			bestD &^= -((0x7FF0000000000000 - bestD) >> 63) // a NaN: 0
		}
		best >>= 1
		counts[best]++
		sums[2*best] += x
		sums[2*best+1] += y
		added++
		pos += p
	}
	return pos, added
}

// at and word read the byte and the little-endian 8 bytes at offset i
// from p, unchecked: assign2Masks checks its window once a line.
func at(p unsafe.Pointer, i int) byte { return *(*byte)(unsafe.Add(p, i)) }
func word(p unsafe.Pointer, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:])
}

// assign2Branches is assign2 for native code.
func assign2Branches(chunk []byte, pos int, cs []float64, counts []int64, sums []float64) (next int, added int64) {
	for len(chunk)-pos >= plainWindow {
		var xy [2]float64
		p := pos
		for c := range 2 {
			neg := chunk[p] == '-'
			if neg {
				p++
			}
			// The digits before the point, then up to three words after it.
			n1, v1 := digitRun(binary.LittleEndian.Uint64(chunk[p:]))
			dot := chunk[p+n1] == '.'
			q := p + n1 + 1
			n2, v2 := digitRun(binary.LittleEndian.Uint64(chunk[q:]))
			n3, v3 := digitRun(binary.LittleEndian.Uint64(chunk[q+8:]))
			n4, v4 := digitRun(binary.LittleEndian.Uint64(chunk[q+16:]))
			if !dot {
				n2, v2 = 0, 0
			}
			if n2 < 8 {
				n3, v3 = 0, 0
			}
			if n3 < 8 {
				n4, v4 = 0, 0
			}
			frac := n2 + n3 + n4
			digits := n1 + frac
			end := p + digits
			if dot {
				end++
			}
			term := byte(',')
			if c == 1 {
				term = '\n'
			}
			if n1 == 8 || digits == 0 || digits > maxDigits || chunk[end] != term {
				return pos, added
			}
			m := ((v1*pow10w[n2&15]+v2)*pow10w[n3&15]+v3)*pow10w[n4&15] + v4
			// Clinger: exact when m fits in 53 bits.
			f := float64(m) / pow10f[frac&31]
			// Eisel–Lemire for larger m (scanPoint's eiselLemire without
			// its second product: a doubt sends the line to it instead).
			lz := bits.LeadingZeros64(m)
			mm := m << lz
			hi, lo := bits.Mul64(mm, pow10x128[maxDigits-frac][0])
			top := hi >> 63
			mant := hi >> (top + 9)
			e2 := uint64(217706*-frac>>16+64+1023) - uint64(lz) - (1 ^ top)
			doubt := hi&0x1FF == 0x1FF && lo+mm < mm || lo == 0 && hi&0x1FF == 0 && mant&3 == 1
			if m > 1<<53 {
				if doubt {
					return pos, added
				}
				mant += mant & 1
				mant >>= 1
				s := mant >> 53
				mant >>= s
				f = math.Float64frombits((e2+s)<<52 | mant&(1<<52-1))
			}
			if neg {
				f = -f
			}
			xy[c] = f
			p = end + 1
		}
		x, y := xy[0], xy[1]
		best := nearest2(x, y, cs)
		counts[best]++
		sums[2*best] += x
		sums[2*best+1] += y
		added++
		pos = p
	}
	return pos, added
}
