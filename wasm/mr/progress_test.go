//go:build !wasip1

package mr

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// listen records what calls report through reportProgress until the test ends.
func listen(t *testing.T) *[]uint32 {
	got := &[]uint32{}
	old := reportProgress
	reportProgress = func(p uint32) { *got = append(*got, p) }
	t.Cleanup(func() { reportProgress = old })
	return got
}

// checkRising wants reports that rise by at least 1 % each (the last, at
// the end, by less if need be), at most 101 of them, ending at the whole
// input.
func checkRising(t *testing.T, what string, got []uint32) {
	t.Helper()
	if len(got) == 0 || len(got) > 101 {
		t.Fatalf("%s: %d reports, want 1..101: %v", what, len(got), got)
	}
	for i := 1; i < len(got); i++ {
		if end := i == len(got)-1 && got[i] == abi.MaxProgress; got[i] < got[i-1]+10 && !(end && got[i] > got[i-1]) {
			t.Fatalf("%s: report %d is %d after %d, want a rise of at least 10 permille: %v", what, i, got[i], got[i-1], got)
		}
	}
	if last := got[len(got)-1]; last != abi.MaxProgress {
		t.Fatalf("%s: the last report is %d, want %d: %v", what, last, abi.MaxProgress, got)
	}
}

func TestProgressMap(t *testing.T) {
	got := listen(t)
	var in bytes.Buffer
	for i := range 5000 {
		in.WriteString(strconv.Itoa(i) + "\n")
	}
	lines := 0
	e := newEngine(Job{Map: func(chunk []byte, emit Emit) error {
		return ForEachLine(chunk, func([]byte, uint64) error { lines++; return nil })
	}, Reduce: Sum{}.Combine})
	if st := e.runMap(0, in.Bytes()); st != abi.StatusOK {
		t.Fatalf("map: status %d: %s", st, e.out)
	}
	if lines != 5000 {
		t.Fatalf("map saw %d lines, want 5000", lines)
	}
	checkRising(t, "map", *got)

	// A line-at-a-time job over a smaller slice than its chunk reports nothing
	// (it is not the call's input), and neither does a job that reads its
	// chunk in one go.
	*got = nil
	e = newEngine(Job{Map: func(chunk []byte, emit Emit) error {
		return ForEachLine(chunk[:len(chunk)/2], func([]byte, uint64) error { return nil })
	}, Reduce: Sum{}.Combine})
	if st := e.runMap(0, in.Bytes()); st != abi.StatusOK || len(*got) != 0 {
		t.Fatalf("map over half its chunk: status %d, reports %v, want none", st, *got)
	}
}

func TestProgressReduce(t *testing.T) {
	got := listen(t)
	var pairs []abi.Pair
	for i := range 3000 {
		k := []byte(strconv.Itoa(100000 + i))
		pairs = append(pairs, abi.Pair{Key: k, Value: []byte("1")}, abi.Pair{Key: k, Value: []byte("2")})
	}
	stream := abi.EncodeGroups(pairs)
	e := newEngine(Job{Map: func([]byte, Emit) error { return nil }, Reduce: Sum{}.Combine})
	if st := e.runReduce(stream); st != abi.StatusOK {
		t.Fatalf("reduce: status %d: %s", st, e.out)
	}
	checkRising(t, "reduce", *got)
	if callMeter.total != 0 {
		t.Fatalf("the meter runs on after the call: %+v", callMeter)
	}
}
