package mr

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/driver"
)

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"7", 7, true}, {"-12", -12, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"", 0, false}, {"-", 0, false}, {"1a", 0, false}, {"99999999999999999999", 0, false}, {"9223372036854775808", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseInt([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Fatalf("parseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok && string(appendInt(nil, got)) != tt.in {
				t.Fatalf("appendInt(%d) = %q", got, appendInt(nil, got))
			}
		})
	}
}

// concat is a generic (non-Sum) combiner: it joins values with "+", so the
// output shows how many times it ran on each key.
var concat = CombineFunc(func(key []byte, values Values, emit Emit) error {
	var out []byte
	for values.Next() {
		if len(out) > 0 {
			out = append(out, '+')
		}
		out = append(out, values.Value()...)
	}
	emit(key, out)
	return nil
})

// TestAggregatorGeneric drives the combining table's buffered path: many
// keys (so the table grows), and one key with more values than
// combineEvery (so the combiner runs early).
func TestAggregatorGeneric(t *testing.T) {
	e := newEngine(Job{
		Map: func(chunk []byte, emit Emit) error {
			for i := range 3000 {
				emit(fmt.Appendf(nil, "k%d", i), []byte("x"))
			}
			for range combineEvery + 1 {
				emit([]byte("hot"), []byte("1"))
			}
			return nil
		},
		Combine: concat,
		Reduce:  concat.Combine,
	})
	if st := e.runMap(0, nil); st != abi.StatusOK {
		t.Fatalf("status %d: %s", st, e.out)
	}
	res, err := abi.DecodeResult(e.out)
	if err != nil {
		t.Fatal(err)
	}
	pairs, _ := abi.DecodePairs(res.Pairs)
	if len(pairs) != 3001 {
		t.Fatalf("%d pairs, want 3001", len(pairs))
	}
	for _, p := range pairs {
		switch string(p.Key) {
		case "hot":
			// 64 values combined early into one, then one more, combined at the end.
			if want := strings.Repeat("1+", combineEvery-1) + "1+1"; string(p.Value) != want {
				t.Fatalf("hot = %q, want %q", p.Value, want)
			}
		default:
			if string(p.Value) != "x" {
				t.Fatalf("%s = %q", p.Key, p.Value)
			}
		}
	}
}

func TestEngineErrors(t *testing.T) {
	reduce := func([]byte, Values, Emit) error { return nil }
	tests := []struct {
		name string
		job  Job
		want string
	}{
		{"map error", Job{Map: func([]byte, Emit) error { return errors.New("bad line") }, Reduce: reduce}, "bad line"},
		{"panic", Job{Map: func([]byte, Emit) error { panic("kaboom") }, Reduce: reduce}, "panic: kaboom"},
		{"sum of text", Job{Map: func(_ []byte, emit Emit) error { emit([]byte("k"), []byte("one")); return nil }, Combine: Sum{}, Reduce: reduce}, "not a decimal integer"},
		{"init error", Job{Init: func([]byte) error { return errors.New("need params") }, Map: func([]byte, Emit) error { return nil }, Reduce: reduce}, "need params"},
		{"no reduce", Job{Map: func([]byte, Emit) error { return nil }}, "no Reduce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RunLocal(tt.job, []byte("line\n"), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestReduceRejectsBadInput(t *testing.T) {
	e := newEngine(Job{Map: func([]byte, Emit) error { return nil }, Reduce: concat.Combine})
	unsorted := append(abi.EncodeGroups([]abi.Pair{{Key: []byte("b"), Value: []byte("1")}}),
		abi.EncodeGroups([]abi.Pair{{Key: []byte("a"), Value: []byte("1")}})...)
	if st := e.runReduce(unsorted); st != abi.StatusBadInput {
		t.Fatalf("status %d (%s), want StatusBadInput", st, e.out)
	}
}

func TestForEachLine(t *testing.T) {
	chunkOffset = 100
	defer func() { chunkOffset = 0 }()
	var got []string
	err := ForEachLine([]byte("a\n\nbc\nd"), func(line []byte, off uint64) error {
		got = append(got, fmt.Sprintf("%d:%s", off, line))
		return nil
	})
	if want := "100:a 102: 103:bc 106:d"; err != nil || strings.Join(got, " ") != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// TestCountersPerTask checks that counters are reset between tasks and
// summed by the driver.
func TestCountersPerTask(t *testing.T) {
	c := Counter("chunks")
	job := Job{
		Map:    func([]byte, Emit) error { c.Add(1); return nil },
		Reduce: func([]byte, Values, Emit) error { return nil },
	}
	input := bytes.Repeat([]byte("0123456789\n"), 100)
	out, err := RunLocalOptions(t.Context(), job, input, nil, driver.Options{ChunkSize: 110})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Counters.Get("chunks"); got != 10 {
		t.Fatalf("chunks = %d, want 10", got)
	}
}

// TestAggregatorKeys checks the Sum table against a map over keys that
// stress its packed-word equality: every length from 0 to 40, keys that
// differ only past byte 16 or only in length (trailing zero bytes), and keys
// sliced from a larger buffer (so that lookup loads past their end) as well
// as keys with no spare capacity (its byte loop).
func TestAggregatorKeys(t *testing.T) {
	var a aggregator
	a.init(Sum{}, true)
	add := a.sumEmit()
	want := map[string]int64{}
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(i*7 + i/251)
	}
	for round := range 3 {
		for i := range 2000 {
			n := i % 41
			off := (i * 13) % (len(buf) - 64)
			key := buf[off : off+n]
			if round == 1 {
				key = bytes.Clone(key) // cap == len
			}
			if round == 2 && n > 0 {
				key = append(make([]byte, 0, n), make([]byte, n-1)...) // zeros: differ only in length
				key = append(key, byte(i%3))
			}
			v := int64(i%5 - 1)
			add(key, appendInt(nil, v))
			want[string(key)] += v
		}
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	out, err := a.flush(nil)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := abi.DecodePairs(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != len(want) {
		t.Fatalf("%d keys, want %d", len(pairs), len(want))
	}
	for _, p := range pairs {
		if got, _ := parseInt(p.Value); got != want[string(p.Key)] {
			t.Fatalf("key %q = %s, want %d", p.Key, p.Value, want[string(p.Key)])
		}
	}
}
