package resp

import "github.com/tabreduce/tabreduce/server/kv"

// AddTestCommand adds a command that calls run, for tests of what a
// command's failure does, and returns a function that removes it.
func AddTestCommand(name string, run func()) (remove func()) {
	commands[name] = command{run: func(*conn, []kv.Value) { run() }, arity: 1}
	return func() { delete(commands, name) }
}

// SetBatching turns the batching of pipelined SETs and pushes on or off.
func SetBatching(on bool) { batching = on }
