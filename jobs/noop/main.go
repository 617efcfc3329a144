// Command noop is a tabreduce job that reads its input and emits nothing: it
// measures the platform's own overhead per task.
package main

import "github.com/tabreduce/tabreduce/wasm/mr"

// Job is the noop job.
var Job = mr.Job{
	Map:    func([]byte, mr.Emit) error { return nil },
	Reduce: func([]byte, mr.Values, mr.Emit) error { return nil },
}

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}
