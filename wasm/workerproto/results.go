package workerproto

import (
	"fmt"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// Result is the output of one finished task.
//
//	u64 task id | u32 elapsed µs | bytes counters | list of bytes partitions
//
// For a map task Partitions holds R pair streams (abi.AppendPair), stream r
// holding the pairs whose abi.Partition(key, R) is r, each sorted by key
// and then value (abi.Pair.Compare); when the task had FlagCombine they are
// the combiner's output. For a reduce task it holds one pair stream, sorted
// the same way. CheckPartitions verifies all of that.
type Result struct {
	TaskID uint64
	// Elapsed is how long the task ran on the worker, in whole microseconds
	// on the wire.
	Elapsed time.Duration
	// Counters are the task's counters, sorted by name (on the wire in the
	// abi counters encoding, inside a byte field).
	Counters abi.Counters
	// Partitions alias the frame they were decoded from.
	Partitions [][]byte
}

const minResultBytes = 8 + 4 + 4 + 4

// Size is the number of bytes the result adds to a RESULTS frame, for a
// sender that bounds its batches.
func (r *Result) Size() int {
	n := minResultBytes
	for _, c := range r.Counters {
		n += 12 + len(c.Name)
	}
	for _, p := range r.Partitions {
		n += 4 + len(p)
	}
	return n
}

// Results reports finished tasks: list of Result.
type Results struct {
	Results []Result
}

// Type returns TypeResults.
func (*Results) Type() Type { return TypeResults }

func (f *Results) appendBody(dst []byte) []byte {
	dst = appendCount(dst, len(f.Results))
	for i := range f.Results {
		dst = f.Results[i].append(dst)
	}
	return dst
}

func (r *Result) append(dst []byte) []byte {
	dst = appendU64(dst, r.TaskID)
	dst = appendU32(dst, micros(r.Elapsed))
	// The counters are a byte field: reserve its length and patch it.
	mark := len(dst)
	dst = abi.AppendCounters(appendU32(dst, 0), r.Counters)
	putU32(dst[mark:], uint32(len(dst)-mark-4))
	dst = appendCount(dst, len(r.Partitions))
	for _, p := range r.Partitions {
		dst = appendBytes(dst, p)
	}
	return dst
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func decodeResults(r *reader) *Results {
	f := &Results{Results: make([]Result, r.count("results", minResultBytes))}
	for i := range f.Results {
		res := &f.Results[i]
		res.TaskID = r.u64("task id")
		res.Elapsed = time.Duration(r.u32("elapsed")) * time.Microsecond
		counters := r.bytes("counters")
		res.Partitions = make([][]byte, r.count("partitions", 4))
		for j := range res.Partitions {
			res.Partitions[j] = r.bytes("partition")
		}
		if r.err != nil {
			break
		}
		cs, err := abi.DecodeCounters(counters)
		if err != nil {
			r.invalid("task %d: counters: %v", res.TaskID, err)
			break
		}
		res.Counters = cs
	}
	return f
}

// FailureKind says why a task failed; the server decides from it whether to
// retry the task elsewhere.
type FailureKind uint8

// Failure kinds.
const (
	// FailureJob: the module returned an error, panicked or trapped (out of
	// memory included), or wrote output that breaks the ABI.
	FailureJob FailureKind = 1
	// FailureTimeout: the task ran past its timeout.
	FailureTimeout FailureKind = 2
	// FailureModule: the module could not be fetched, did not match its
	// sha256, or could not be compiled or instantiated.
	FailureModule FailureKind = 3
	// FailureTooLarge: the output exceeded Welcome.MaxResultBytes or the
	// worker's own output cap.
	FailureTooLarge FailureKind = 4
	// FailureInternal: a worker bug, or the worker refused the task (more
	// tasks than Welcome's prefetch allows).
	FailureInternal FailureKind = 5
)

var failureNames = [...]string{
	FailureJob: "job", FailureTimeout: "timeout", FailureModule: "module",
	FailureTooLarge: "too_large", FailureInternal: "internal",
}

func (k FailureKind) String() string {
	if int(k) < len(failureNames) && failureNames[k] != "" {
		return failureNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Failure reports a task that did not produce a result.
//
//	u64 task id | u8 kind | str message
type Failure struct {
	TaskID  uint64
	Kind    FailureKind
	Message string
}

// Failures reports failed tasks: list of Failure.
type Failures struct {
	Failures []Failure
}

// Type returns TypeFailures.
func (*Failures) Type() Type { return TypeFailures }

func (f *Failures) appendBody(dst []byte) []byte {
	dst = appendCount(dst, len(f.Failures))
	for _, x := range f.Failures {
		dst = appendU64(dst, x.TaskID)
		dst = append(dst, byte(x.Kind))
		dst = appendString(dst, x.Message)
	}
	return dst
}

func decodeFailures(r *reader) *Failures {
	f := &Failures{Failures: make([]Failure, r.count("failures", 8+1+4))}
	for i := range f.Failures {
		x := &f.Failures[i]
		x.TaskID = r.u64("task id")
		x.Kind = FailureKind(r.u8("failure kind"))
		x.Message = r.string("message")
		if r.err == nil && (x.Kind < FailureJob || x.Kind > FailureInternal) {
			r.invalid("task %d: failure kind %d", x.TaskID, x.Kind)
		}
	}
	return f
}
