package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
	"github.com/tabreduce/tabreduce/wasm/mr"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const pkg = "github.com/tabreduce/tabreduce/jobs/grep"

// oracle scans the lines one by one with the standard regexp package.
func oracle(text, pattern string) driver.Output {
	re := regexp.MustCompile(pattern)
	m := map[string]string{}
	offset, n := 0, 0
	for line := range strings.SplitAfterSeq(text, "\n") {
		body := strings.TrimSuffix(line, "\n")
		if re.MatchString(body) {
			m[fmt.Sprintf("%016d", offset)] = body
			n++
		}
		offset += len(line)
	}
	var cs abi.Counters
	if lines := strings.Count(text, "\n") + btoi(!strings.HasSuffix(text, "\n") && text != ""); lines > 0 {
		cs = append(cs, abi.Counter{Name: "lines", Value: int64(lines)})
	}
	if n > 0 {
		cs = append(cs, abi.Counter{Name: "matches", Value: int64(n)})
	}
	return driver.Output{Pairs: wasmtest.Pairs(m), Counters: cs}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestGrep(t *testing.T) {
	var big strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&big, "line %d says %s\n", i, []string{"error: disk", "ok", "warning", "ERROR again"}[i%4])
	}
	tests := []struct {
		name, input, pattern string
		opts                 driver.Options
	}{
		{"simple", "alpha\nbeta\ngamma\n", "a$", driver.Options{}},
		{"no match", "alpha\nbeta\n", "zzz", driver.Options{}},
		{"case-insensitive, chunks", big.String(), "(?i)error", driver.Options{ChunkSize: 1 << 12, Reducers: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := fmt.Appendf(nil, `{"pattern": %q}`, tt.pattern)
			want := oracle(tt.input, tt.pattern)
			wasmtest.Check(t, pkg, Job, []byte(tt.input), params, tt.opts, wasmtest.Equals(want))
		})
	}
}

func TestGrepBadParams(t *testing.T) {
	for _, params := range []string{`{}`, `{"pattern": "("}`, `not json`} {
		if _, err := mr.RunLocal(Job, []byte("x\n"), []byte(params)); err == nil {
			t.Errorf("params %s: no error", params)
		}
	}
}
