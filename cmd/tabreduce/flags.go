package main

import (
	"fmt"
	"strconv"
	"strings"
)

// byteSizeFlag is a flag for sizes like 8MiB, 512KiB, 1GiB or plain bytes.
type byteSizeFlag int64

func (b *byteSizeFlag) String() string { return formatByteSize(int64(*b)) }

func (b *byteSizeFlag) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSizeFlag(n)
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// parseByteSize parses a positive size with an optional unit.
func parseByteSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// formatByteSize writes n in the largest binary unit that divides it:
// 1MiB, 512KiB, 1000B.
func formatByteSize(n int64) string {
	for _, u := range byteUnits {
		if strings.HasSuffix(u.suffix, "iB") && n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// inRange refuses a flag's value outside lo..hi; show, if set, formats the
// numbers.
func inRange(name string, v, lo, hi int64, show func(int64) string) error {
	if v >= lo && v <= hi {
		return nil
	}
	if show == nil {
		show = func(n int64) string { return strconv.FormatInt(n, 10) }
	}
	return usagef("%s %s is outside %s..%s", name, show(v), show(lo), show(hi))
}
