package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/internal/errfmt"
)

// A command module is a plain WASI preview 1 program (it exports _start
// and none of the reactor exports), run the way Hadoop Streaming runs a
// program: a fresh instance per task, the task's input on stdin, its
// output read from stdout as lines. wasm/ABI.md ("Command modules") is the
// contract; this file implements its framing for both hosts.

// ExportStart is a command's entry point.
const ExportStart = "_start"

// CommandImport reports whether a command may import the WASI function
// name: the reactor's allowlist, plus the two that C's stdio calls on its
// streams. What stands behind them is the same empty, deterministic host.
// (A function, not a map: package variables with initialisers are linked
// into every module.)
func CommandImport(name string) bool {
	return AllowedImports[name] || name == "fd_seek" || name == "fd_filestat_get"
}

// Bounds of a command's parameters and of its stderr counters.
const (
	MaxCommandArgs      = 256
	MaxCommandArgBytes  = 4 << 10
	MaxCommandParams    = 64 << 10 // the encoded args and env together
	MaxCommandCounters  = 256
	maxCounterLineBytes = 1 << 10
)

// EnvOffset and EnvPhase name the variables the host adds to a command's
// environment: the byte offset of a map task's chunk in the job's input
// (the reactor's chunk offset), and "map" or "reduce".
const (
	EnvOffset = "TABREDUCE_OFFSET"
	EnvPhase  = "TABREDUCE_PHASE"
)

// ErrNotLines: a key or value cannot be written as a line for a command
// (a key holds a tab or a newline, a value a newline).
var ErrNotLines = errors.New("abi: a command reads key<TAB>value lines")

// ErrCommandParams: a command's arguments or environment are malformed.
var ErrCommandParams = errors.New("abi: bad command parameters")

// AppendCommandParams encodes a command's arguments (after argv[0], which
// the host sets to the phase) and environment ("NAME=value"), as the
// worker protocol carries them in a task's parameters:
//
//	u32 argc | argc × bytes arg | u32 envc | envc × bytes env
func AppendCommandParams(dst []byte, args, env []string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(args)))
	for _, a := range args {
		dst = appendBytes(dst, []byte(a))
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(env)))
	for _, e := range env {
		dst = appendBytes(dst, []byte(e))
	}
	return dst
}

// DecodeCommandParams decodes AppendCommandParams's encoding and checks
// every bound: an empty b is no arguments and no environment.
func DecodeCommandParams(b []byte) (args, env []string, err error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	if len(b) > MaxCommandParams {
		return nil, nil, errfmt.Kind(ErrCommandParams, errfmt.Int(len(b))+" bytes, at most "+errfmt.Int(MaxCommandParams))
	}
	r := reader{buf: b}
	list := func(what string) []string {
		n := r.u32(what + " count")
		if n > MaxCommandArgs {
			r.err = errfmt.Kind(ErrCommandParams, errfmt.Int(n)+" "+what+"s, at most "+errfmt.Int(MaxCommandArgs))
			return nil
		}
		out := make([]string, 0, n)
		for i := uint32(0); i < n && r.err == nil; i++ {
			out = append(out, string(r.bytes(what)))
		}
		return out
	}
	args = list("arg")
	env = list("env")
	switch {
	case r.err != nil:
		return nil, nil, r.err
	case r.off != len(b):
		return nil, nil, errfmt.Kind(ErrCommandParams, "trailing bytes")
	}
	for _, a := range args {
		if err := CheckCommandArg(a); err != nil {
			return nil, nil, err
		}
	}
	seen := make(map[string]bool, len(env))
	for _, e := range env {
		if err := CheckCommandEnv(e); err != nil {
			return nil, nil, err
		}
		name, _, _ := bytes.Cut([]byte(e), []byte{'='})
		if seen[string(name)] {
			return nil, nil, errfmt.Kind(ErrCommandParams, "environment variable "+errfmt.Quote(name)+" set twice")
		}
		seen[string(name)] = true
	}
	return args, env, nil
}

// CheckCommandArg refuses an argument WASI cannot pass (a NUL byte) or
// longer than MaxCommandArgBytes.
func CheckCommandArg(a string) error {
	if len(a) > MaxCommandArgBytes || bytes.IndexByte([]byte(a), 0) >= 0 {
		return errfmt.Kind(ErrCommandParams, "argument "+errfmt.Quote([]byte(a))+": at most "+errfmt.Int(MaxCommandArgBytes)+" bytes, no NUL")
	}
	return nil
}

// CheckCommandEnv refuses an environment entry that is not NAME=value with
// a non-empty NAME free of '=', or that names one of the host's own
// TABREDUCE_ variables.
func CheckCommandEnv(e string) error {
	name, _, ok := bytes.Cut([]byte(e), []byte{'='})
	switch {
	case CheckCommandArg(e) != nil:
		return CheckCommandArg(e)
	case !ok || len(name) == 0:
		return errfmt.Kind(ErrCommandParams, "environment entry "+errfmt.Quote([]byte(e))+" is not NAME=value")
	case bytes.HasPrefix(name, []byte("TABREDUCE_")):
		return errfmt.Kind(ErrCommandParams, "environment entry "+errfmt.Quote([]byte(e))+": TABREDUCE_ names are the host's")
	}
	return nil
}

// CommandEnv returns the environment of a command's task: the job's
// entries, then the host's.
func CommandEnv(env []string, phase string, offset uint64) []string {
	out := append(make([]string, 0, len(env)+2), env...)
	out = append(out, EnvPhase+"="+phase)
	if phase == "map" {
		out = append(out, EnvOffset+"="+strconv.FormatUint(offset, 10))
	}
	return out
}

// AppendLinePairs appends the pairs of a command's stdout to a pair
// stream: each line is key<TAB>value, split at its first tab (a line
// without one is a key with an empty value, as in Hadoop Streaming); a last
// line without a newline counts; empty lines are skipped. Bytes are kept as
// they are (no \r is stripped).
func AppendLinePairs(dst, out []byte) []byte {
	for len(out) > 0 {
		line := out
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			line, out = out[:i], out[i+1:]
		} else {
			out = nil
		}
		if len(line) == 0 {
			continue
		}
		k, v, _ := bytes.Cut(line, []byte{'\t'})
		dst = AppendPair(dst, k, v)
	}
	return dst
}

// AppendGroupLines appends a grouped stream as a command reducer reads it:
// key<TAB>value\n for every value of every key, in the stream's order
// (keys ascending, each key's values sorted).
func AppendGroupLines(dst, groups []byte) ([]byte, error) {
	gr := NewGroupReader(groups)
	for {
		key, vals, n, ok := gr.Next()
		if !ok {
			break
		}
		if bytes.IndexByte(key, '\t') >= 0 || bytes.IndexByte(key, '\n') >= 0 {
			return nil, errfmt.Kind(ErrNotLines, "key "+errfmt.Quote(key)+" holds a tab or a newline")
		}
		vr := NewValueReader(vals)
		for i := 0; i < n; i++ {
			v, _ := vr.Next()
			if bytes.IndexByte(v, '\n') >= 0 {
				return nil, errfmt.Kind(ErrNotLines, "key "+errfmt.Quote(key)+": a value holds a newline")
			}
			dst = append(append(append(append(dst, key...), '\t'), v...), '\n')
		}
	}
	return dst, gr.Err()
}

// CounterLines reads Hadoop Streaming's counter lines from a command's
// stderr as it is written: reporter:counter:GROUP,NAME,AMOUNT adds AMOUNT
// (a decimal int64) to the counter "GROUP.NAME". Other lines are left
// alone; a malformed counter line is an error. It is not safe for
// concurrent use.
type CounterLines struct {
	counts  map[string]int64
	line    []byte
	skip    bool // inside a line too long to be a counter line
	lineNum int
	err     error
}

// Write takes the next bytes of stderr.
func (c *CounterLines) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			c.endLine()
			continue
		}
		if c.skip {
			continue
		}
		if len(c.line) == maxCounterLineBytes {
			c.skip, c.line = true, c.line[:0]
			continue
		}
		c.line = append(c.line, b)
	}
	return len(p), nil
}

func (c *CounterLines) endLine() {
	c.lineNum++
	line := c.line
	c.line, c.skip = c.line[:0], false
	rest, ok := bytes.CutPrefix(line, []byte("reporter:counter:"))
	if !ok || c.err != nil {
		return
	}
	parts := bytes.Split(rest, []byte{','})
	var n int64
	var err error
	if len(parts) == 3 {
		n, err = strconv.ParseInt(string(parts[2]), 10, 64)
	}
	if len(parts) != 3 || err != nil || len(parts[0]) == 0 || len(parts[1]) == 0 {
		c.err = errors.New("stderr line " + errfmt.Int(c.lineNum) + ": " + errfmt.Quote(line) + " is not reporter:counter:GROUP,NAME,AMOUNT")
		return
	}
	if c.counts == nil {
		c.counts = map[string]int64{}
	}
	name := string(parts[0]) + "." + string(parts[1])
	if _, seen := c.counts[name]; !seen && len(c.counts) == MaxCommandCounters {
		c.err = errors.New("more than " + errfmt.Int(MaxCommandCounters) + " counters on stderr")
		return
	}
	c.counts[name] += n
}

// Counters ends the stream (a last line without a newline counts) and
// returns the counters, sorted by name, or the first malformed line's
// error.
func (c *CounterLines) Counters() (Counters, error) {
	if len(c.line) > 0 {
		c.endLine()
	}
	if c.err != nil {
		return nil, c.err
	}
	out := make(Counters, 0, len(c.counts))
	for name, v := range c.counts {
		out = append(out, Counter{Name: name, Value: v})
	}
	sortCounters(out)
	return out, nil
}
