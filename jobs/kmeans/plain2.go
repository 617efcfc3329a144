package main

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The 2-D hot path. Under Go's wasm code generator every taken jump goes
// through the function's dispatch loop (set a block number, branch to the
// loop's head, br_table), and every call stores the live values to the
// stack in linear memory and loads them back. So the common line, two
// plain decimals, is read here by one function with no call and few
// jumps: each number's digits in three or four words whose runs are
// combined by selects, not by a loop; the conversion both ways at once
// (Clinger's division, and Eisel–Lemire's first product), kept by a
// select; the nearest centroid and the sums in place. Whatever is not of
// that form, or leaves the rounding in any doubt, stops the function at
// the start of its line, and the general path (scanPoint, parsePoint)
// reads the line.

// plainWindow is how many bytes must remain from a line's start for
// assign2 to read it: its longest line, two numbers of a sign, 19 digits
// and a point, is 44 bytes, and the last word it loads ends at most 56
// bytes from the line's start.
const plainWindow = 64

// pow10w holds 10^n for the n digits a word can add; its length keeps
// the index in range without a check (n&15).
var pow10w = [16]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// pow10f holds the powers of ten float64 represents exactly, padded so
// that an index masked with 31 needs no check.
var pow10f = [32]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// assign2 adds each line of chunk[pos:] that is a 2-D point of plain
// decimals, "[-]digits[.digits],[-]digits[.digits]\n" (at most 7 digits
// before a point and 19 in all, no spaces), to counts and sums, the point
// going to its nearest centroid among cs as nearest would choose. It
// stops at the first line of any other form, or that leaves less than
// plainWindow bytes, and returns that line's start and how many points it
// added.
func assign2(chunk []byte, pos int, cs []float64, counts []int64, sums []float64) (next int, added int64) {
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
