package worker

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// faultCase is a correct result of a task, computed by Execute.
type faultCase struct {
	name string
	task workerproto.Task
	res  workerproto.Result
}

// faultCases runs wordcount's map (with and without the combiner) and
// reduce, and makes a result with equal pairs and non-decimal values, through Execute.
func faultCases(t *testing.T) []faultCase {
	t.Helper()
	r, shas := compiled(t, wordcount)
	input := []byte(strings.Repeat(text, 3))
	reduceIn := abi.EncodeGroups([]abi.Pair{
		{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("a"), Value: []byte("2")},
		{Key: []byte("b"), Value: []byte("5")}, {Key: []byte("c"), Value: []byte("9")}})
	tasks := []faultCase{
		{name: "map with combiner", task: workerproto.Task{Phase: workerproto.PhaseMap, Reducers: 3, Flags: workerproto.FlagCombine, Input: input}},
		{name: "map without combiner", task: workerproto.Task{Phase: workerproto.PhaseMap, Reducers: 2, Input: input}},
		{name: "reduce", task: workerproto.Task{Phase: workerproto.PhaseReduce, Reducers: 3, Input: reduceIn}},
	}
	for i := range tasks {
		tc := &tasks[i]
		tc.task.ID, tc.task.Job, tc.task.Module = uint64(i), "j", shas[0]
		res, err := Execute(t.Context(), r, &tc.task)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		tc.res = res
	}
	words := workerproto.Task{Phase: workerproto.PhaseMap, Reducers: 1}
	// Equal pairs: a changed value must move to keep the order.
	stream := abi.EncodePairs([]abi.Pair{
		{Key: []byte("k"), Value: []byte("1")}, {Key: []byte("k"), Value: []byte("1")},
		{Key: []byte("k"), Value: []byte("x")}, {Key: []byte("k"), Value: []byte("x")},
		{Key: []byte("l"), Value: nil}})
	return append(tasks, faultCase{name: "equal pairs, text values", task: words, res: workerproto.Result{Partitions: [][]byte{stream}}})
}

// TestFaultyCorruptsPlausibly corrupts each kind of result under many
// seeds: the corrupted result must hash differently from the correct one
// and still pass CheckPartitions, the correct one must be left as it was,
// and both kinds of fault must occur.
func TestFaultyCorruptsPlausibly(t *testing.T) {
	for _, tc := range faultCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			want := ResultHash(tc.res)
			saved := slices.Clone(tc.res.Partitions)
			for i := range saved {
				saved[i] = bytes.Clone(saved[i])
			}
			kinds := map[string]int{}
			for seed := range uint64(64) {
				res := tc.res
				how := newFaults(1, seed+1).corrupt(&res)
				if how == "" {
					t.Fatalf("seed %d: Faulty 1 left a result with output alone, want it corrupted", seed)
				}
				kinds[how]++
				if ResultHash(res) == want {
					t.Fatalf("seed %d: %s: result hashes as the correct one, want it different", seed, how)
				}
				if err := workerproto.CheckPartitions(tc.task.Phase, int(tc.task.Reducers), res.Partitions); err != nil {
					t.Fatalf("seed %d: %s: corrupted result fails CheckPartitions, want it plausible: %v", seed, how, err)
				}
				if !slices.EqualFunc(tc.res.Partitions, saved, bytes.Equal) {
					t.Fatalf("seed %d: %s: the correct result's partitions were modified in place", seed, how)
				}
			}
			if kinds[faultChangedValue] == 0 || kinds[faultDroppedPair] == 0 {
				t.Fatalf("faults over 64 seeds: %v, want both a changed value and a dropped pair", kinds)
			}
		})
	}
}

// TestFaultyFraction: 0 never corrupts, 1 always does when there is
// output and never when there is none, and 0.5 about half the time.
func TestFaultyFraction(t *testing.T) {
	res := faultCases(t)[0].res
	empty := workerproto.Result{Partitions: make([][]byte, 3)}
	const n = 1000
	count := func(f *faults, r workerproto.Result) int {
		c := 0
		for range n {
			r := r
			if f.corrupt(&r) != "" {
				c++
			}
		}
		return c
	}
	if f := newFaults(0, 1); f != nil || count(f, res) != 0 {
		t.Fatalf("fraction 0: %v, %d of %d corrupted; want an honest worker (nil) that corrupts none", f, count(f, res), n)
	}
	if got := count(newFaults(1, 1), res); got != n {
		t.Fatalf("fraction 1: %d of %d corrupted, want all", got, n)
	}
	if got := count(newFaults(1, 1), empty); got != 0 {
		t.Fatalf("fraction 1, no output pairs: %d of %d corrupted, want none", got, n)
	}
	if got := count(newFaults(0.5, 1), res); got < 400 || got > 600 {
		t.Fatalf("fraction 0.5: %d of %d corrupted, want about half", got, n)
	}
	a, b := newFaults(0.5, 7), newFaults(0.5, 7)
	for i := range 100 {
		ra, rb := res, res
		if ha, hb := a.corrupt(&ra), b.corrupt(&rb); ha != hb || ResultHash(ra) != ResultHash(rb) {
			t.Fatalf("call %d: the same seed corrupted differently (%q, %q), want the same faults", i, ha, hb)
		}
	}
	for _, bad := range []float64{-0.1, 1.5} {
		if _, err := (Options{Runner: wasmtest.Runner(t), Server: "http://127.0.0.1:1", Faulty: bad}).withDefaults(); err == nil {
			t.Errorf("Options.Faulty %g accepted, want an error", bad)
		}
	}
}

// TestFaultySession runs a task on a worker with Faulty 1 over a Pipe: the
// result it sends must differ from Execute's and still pass CheckPartitions.
func TestFaultySession(t *testing.T) {
	r, shas := compiled(t, wordcount)
	task := workerproto.Task{ID: 1, Job: "j", Phase: workerproto.PhaseMap, Module: shas[0], Reducers: 2,
		Flags: workerproto.FlagCombine, Input: []byte(text)}
	honest, err := Execute(t.Context(), r, &task)
	if err != nil {
		t.Fatal(err)
	}
	conns := startWorker(t, Options{Runner: r, Slots: 1, Faulty: 1, FaultySeed: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	p := next(t, conns)
	p.handshake(welcome)
	p.send(&workerproto.Tasks{Tasks: []workerproto.Task{task}})
	got := p.collect(func(o *outcomes) bool { return len(o.results) == 1 }).results[1]
	if ResultHash(got) == ResultHash(honest) {
		t.Fatalf("faulty worker sent the correct result %s, want a corrupted one", pairsOf(got.Partitions))
	}
	if err := workerproto.CheckPartitions(task.Phase, int(task.Reducers), got.Partitions); err != nil {
		t.Fatalf("faulty worker's result fails CheckPartitions, want it plausible: %v", err)
	}
}

// TestResultHash pins the canonical output hash: each partition
// length-prefixed (u32 little-endian), in order, so moving bytes from one
// partition to the next changes it.
func TestResultHash(t *testing.T) {
	a := abi.AppendPair(nil, []byte("a"), []byte("1"))
	b := abi.AppendPair(nil, []byte("b"), []byte("2"))
	var want []byte
	for _, p := range [][]byte{a, nil, b} {
		want = binary.LittleEndian.AppendUint32(want, uint32(len(p)))
		want = append(want, p...)
	}
	res := workerproto.Result{TaskID: 9, Elapsed: time.Second, Counters: abi.Counters{{Name: "n", Value: 1}}, Partitions: [][]byte{a, nil, b}}
	if got := ResultHash(res); got != sha256.Sum256(want) {
		t.Fatalf("ResultHash = %x, want sha256 of the length-prefixed partitions %x", got, sha256.Sum256(want))
	}
	other := workerproto.Result{Partitions: [][]byte{a, b, nil}}
	joined := workerproto.Result{Partitions: [][]byte{append(slices.Clone(a), b...), nil, nil}}
	if h := ResultHash(res); h == ResultHash(other) || h == ResultHash(joined) || ResultHash(other) == ResultHash(joined) {
		t.Fatal("results with the same bytes in other partitions hash alike, want them distinct")
	}
}

// TestExecuteMatchesWorker: Execute gives the bytes a worker's executor
// gives, for a map task with the combiner.
func TestExecuteMatchesWorker(t *testing.T) {
	r, shas := compiled(t, wordcount)
	task := workerproto.Task{ID: 1, Job: "j", Phase: workerproto.PhaseMap, Module: shas[0], Reducers: 3,
		Flags: workerproto.FlagCombine, Input: []byte(strings.Repeat(text, 5))}
	got, err := Execute(t.Context(), r, &task)
	if err != nil {
		t.Fatal(err)
	}
	x := executor{r: r, maxResult: 1 << 20}
	want := runChecked(t, &x, &task, &scratch{})
	if ResultHash(got) != ResultHash(want) || !slices.Equal(got.Counters, want.Counters) || got.Elapsed <= 0 {
		t.Fatalf("Execute: %s %v (elapsed %v); worker: %s %v", pairsOf(got.Partitions), got.Counters, got.Elapsed,
			pairsOf(want.Partitions), want.Counters)
	}
}
