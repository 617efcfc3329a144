package mr_test

import (
	"bytes"
	"fmt"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// A job is a Job value registered from init; built with GOOS=wasip1 it is a
// module, and RunLocal runs the same value natively.
func Example() {
	lines := mr.Counter("lines")
	job := mr.Job{
		Map: func(chunk []byte, emit mr.Emit) error {
			return mr.ForEachLine(chunk, func(line []byte, _ uint64) error {
				lines.Add(1)
				for _, w := range bytes.Fields(line) {
					emit(w, []byte("1"))
				}
				return nil
			})
		},
		Combine: mr.Sum{},
		Reduce:  mr.Sum{}.Combine,
	}
	// In a job's package main: func init() { mr.Register(job) }

	out, err := mr.RunLocal(job, []byte("to be or\nnot to be\n"), nil)
	if err != nil {
		panic(err)
	}
	for _, p := range out.Pairs {
		fmt.Printf("%s\t%s\n", p.Key, p.Value)
	}
	fmt.Println("lines:", out.Counters.Get("lines"))
	// Output:
	// be	2
	// not	1
	// or	1
	// to	2
	// lines: 2
}

// Job parameters arrive in Init, once per instance, before any task.
func ExampleJob_Init() {
	var sep []byte
	job := mr.Job{
		Init: func(params []byte) error { sep = bytes.Clone(params); return nil },
		Map: func(chunk []byte, emit mr.Emit) error {
			return mr.ForEachLine(chunk, func(line []byte, _ uint64) error {
				if k, v, ok := bytes.Cut(line, sep); ok {
					emit(k, v)
				}
				return nil
			})
		},
		Reduce: func(key []byte, values mr.Values, emit mr.Emit) error {
			emit(key, []byte(fmt.Sprint(values.Len())))
			return nil
		},
	}
	out, _ := mr.RunLocal(job, []byte("a=1\nb=2\na=3\n"), []byte("="))
	for _, p := range out.Pairs {
		fmt.Printf("%s has %s values\n", p.Key, p.Value)
	}
	// Output:
	// a has 2 values
	// b has 1 values
}
