package main

import (
	"strconv"
	"strings"
	"testing"
)

// maxByteSize is the largest size parseByteSize accepts: 1 TiB.
const maxByteSize = 1 << 40

// FuzzParseByteSize checks the --max-body parser: it never panics, accepts
// only sizes in 1..1 TiB, and agrees with the number times its unit.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{
		"8MiB", "512KiB", "1GiB", "1048576", "1B", "0", "-1", "1.5MiB", "MiB", "", " 8 MiB ",
		"1024GiB", "1025GiB", "1099511627776", "1099511627777", "9223372036854775807GiB",
		"1e6", "0x10", "+5KB", "5kb", "5 KiB B", "１MiB",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseByteSize(s)
		if err != nil {
			if n != 0 || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("parseByteSize(%q) = %d, %v; want 0 and an error quoting the input", s, n, err)
			}
			return
		}
		if n <= 0 || n > maxByteSize {
			t.Fatalf("parseByteSize(%q) = %d, want 1..%d", s, n, int64(maxByteSize))
		}
		num, mult := splitUnit(strings.TrimSpace(s))
		v, perr := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if perr != nil || v*mult != n {
			t.Fatalf("parseByteSize(%q) = %d, want %s × %d", s, n, num, mult)
		}
		if back, err := parseByteSize(strconv.FormatInt(n, 10)); err != nil || back != n {
			t.Fatalf("parseByteSize(%d) = %d, %v; want %d, nil", n, back, err, n)
		}
	})
}

// splitUnit is the unit table read independently of byteUnits.
func splitUnit(s string) (string, int64) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			return strings.TrimSuffix(s, u.suffix), u.mult
		}
	}
	return s, 1
}
