package runner_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// A module built with the SDK reports how far its map call has got through
// the chunk, rising in steps of at least 1 % (the last may be less) to the
// whole chunk, to the
// call's context only; the result is the same with or without a listener.
func TestProgress(t *testing.T) {
	r := newRunner(t, runner.Config{})
	sha, err := r.Compile(t.Context(), wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/primes"))
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for k := range 500 {
		fmt.Fprintf(&in, "%d %d\n", k*100, k*100+99)
	}
	task := runner.Task{ID: "t", Module: sha}
	chunk := abi.Chunk{Data: []byte(in.String())}
	quiet, err := r.Map(t.Context(), task, chunk)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint32
	ctx := runner.WithProgress(t.Context(), func(p uint32) { got = append(got, p) })
	res, err := r.Map(ctx, task, chunk)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 50 || len(got) > 101 || got[len(got)-1] != abi.MaxProgress {
		t.Fatalf("%d reports %v: want 50..101 of them, the last %d", len(got), got, abi.MaxProgress)
	}
	for i := 1; i < len(got); i++ {
		if end := i == len(got)-1 && got[i] == abi.MaxProgress; got[i] < got[i-1]+10 && !(end && got[i] > got[i-1]) {
			t.Fatalf("report %d is %d after %d: want a rise of at least 10 permille", i, got[i], got[i-1])
		}
	}
	if string(res.Pairs) != string(quiet.Pairs) || len(res.Counters) != len(quiet.Counters) {
		t.Fatal("the result differs when someone listens to the progress")
	}
}

// TestProgressWordcount: wordcount scans its chunk itself, in segments, and
// says how far it has got after each (mr.Consumed).
func TestProgressWordcount(t *testing.T) {
	r := newRunner(t, runner.Config{})
	sha, err := r.Compile(t.Context(), wasmtest.Module(t, "github.com/tabreduce/tabreduce/jobs/wordcount"))
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for k := 0; in.Len() < 1<<20; k++ {
		fmt.Fprintf(&in, "word%d Word%d, ÉCOLE\n", k%1000, k%7)
	}
	var got []uint32
	ctx := runner.WithProgress(t.Context(), func(p uint32) { got = append(got, p) })
	if _, err := r.Map(ctx, runner.Task{ID: "t", Module: sha}, abi.Chunk{Data: []byte(in.String())}); err != nil {
		t.Fatal(err)
	}
	// 1 MiB in 64 KiB segments: about 16 reports, each a rise, the last the end.
	if len(got) < 10 || got[len(got)-1] != abi.MaxProgress {
		t.Fatalf("%d reports %v: want 10 or more, the last %d", len(got), got, abi.MaxProgress)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("report %d is %d after %d: want a rise", i, got[i], got[i-1])
		}
	}
}
