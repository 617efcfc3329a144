package workerproto

import "time"

// Phase is the phase a task belongs to.
type Phase uint8

// Phases.
const (
	PhaseMap    Phase = 1
	PhaseReduce Phase = 2
)

func (p Phase) String() string {
	switch p {
	case PhaseMap:
		return "map"
	case PhaseReduce:
		return "reduce"
	}
	return "unknown"
}

// Flags modify how a task runs.
type Flags uint8

// FlagCombine asks a map task to run the module's combiner over its output
// (sorted and grouped) before partitioning it. Only map tasks may carry it.
const FlagCombine Flags = 1 << 0

// Task is one unit of work. For a map task Input is a chunk of the job's
// input starting at byte Offset (runner.Map's abi.Chunk{Offset, Input}); for
// a reduce task it is a grouped stream (abi.EncodeGroups: keys strictly
// ascending, each key's values sorted) and Offset is 0.
//
//	u64 id | str job | u8 phase | str module | bytes params | u16 reducers |
//	u8 flags | u32 attempt | u32 timeout ms | u64 offset | bytes input
type Task struct {
	// ID is unique among the server's tasks; results, failures, heartbeats
	// and cancels name the task by it.
	ID uint64
	// Job is the id of the job the task belongs to.
	Job   string
	Phase Phase
	// Module is the sha256 of the job module, 64 lower-case hex digits; a
	// worker fetches it from GET /modules/{Module}.wasm.
	Module string
	// Params are the job's parameters (JSON), handed to a reactor module as
	// they are; for a command module (wasm/ABI.md "Command modules"), its
	// arguments and environment, abi.AppendCommandParams's encoding.
	Params []byte
	// Reducers is R: a map task partitions its output into R pair streams.
	// At least 1 and at most MaxReducers.
	Reducers uint16
	Flags    Flags
	// Attempt counts from 1; it only informs logs.
	Attempt uint32
	// Timeout bounds the task on the worker, in whole milliseconds; 0 leaves
	// it to the worker's own limit.
	Timeout time.Duration
	Offset  uint64
	Input   []byte
}

// minTaskBytes is the encoded size of a task whose strings and byte fields
// are empty.
const minTaskBytes = 8 + 4 + 1 + 4 + 4 + 2 + 1 + 4 + 4 + 8 + 4

// TasksFrameSize is the encoded size of a TASKS frame that carries tasks:
// what a sender compares with its receiver's frame limit.
func TasksFrameSize(tasks ...Task) int {
	n := 2 + 4 // version, type, count
	for i := range tasks {
		t := &tasks[i]
		n += minTaskBytes + len(t.Job) + len(t.Module) + len(t.Params) + len(t.Input)
	}
	return n
}

// Tasks hands tasks to a worker: list of Task.
type Tasks struct {
	Tasks []Task
}

// Type returns TypeTasks.
func (*Tasks) Type() Type { return TypeTasks }

func (f *Tasks) appendBody(dst []byte) []byte {
	dst = appendCount(dst, len(f.Tasks))
	for i := range f.Tasks {
		dst = f.Tasks[i].append(dst)
	}
	return dst
}

func (t *Task) append(dst []byte) []byte {
	dst = appendU64(dst, t.ID)
	dst = appendString(dst, t.Job)
	dst = append(dst, byte(t.Phase))
	dst = appendString(dst, t.Module)
	dst = appendBytes(dst, t.Params)
	dst = appendU16(dst, t.Reducers)
	dst = append(dst, byte(t.Flags))
	dst = appendU32(dst, t.Attempt)
	dst = appendU32(dst, millis(t.Timeout))
	dst = appendU64(dst, t.Offset)
	return appendBytes(dst, t.Input)
}

func decodeTasks(r *reader) *Tasks {
	n := r.count("tasks", minTaskBytes)
	f := &Tasks{Tasks: make([]Task, n)}
	for i := range f.Tasks {
		decodeTask(r, &f.Tasks[i])
	}
	return f
}

func decodeTask(r *reader, t *Task) {
	t.ID = r.u64("task id")
	t.Job = r.string("job id")
	t.Phase = Phase(r.u8("phase"))
	t.Module = r.string("module")
	t.Params = r.bytes("params")
	t.Reducers = r.u16("reducers")
	t.Flags = Flags(r.u8("flags"))
	t.Attempt = r.u32("attempt")
	t.Timeout = time.Duration(r.u32("timeout")) * time.Millisecond
	t.Offset = r.u64("offset")
	t.Input = r.bytes("input")
	if r.err != nil {
		return
	}
	switch {
	case t.Phase != PhaseMap && t.Phase != PhaseReduce:
		r.invalid("task %d: phase %d", t.ID, t.Phase)
	case !isSHA256Hex(t.Module):
		r.invalid("task %d: module %q is not a lower-case hex sha256", t.ID, t.Module)
	case t.Reducers == 0 || t.Reducers > MaxReducers:
		r.invalid("task %d: %d reducers (1 to %d)", t.ID, t.Reducers, MaxReducers)
	case t.Flags&^FlagCombine != 0:
		r.invalid("task %d: unknown flags %#x", t.ID, t.Flags)
	case t.Phase == PhaseReduce && (t.Flags != 0 || t.Offset != 0):
		r.invalid("task %d: a reduce task has no flags and offset 0", t.ID)
	}
}

// isSHA256Hex reports whether s is 64 lower-case hex digits: a module hash,
// safe to put in a URL path or a file name.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Cancel tells a worker to abort tasks: list of u64 task id. The worker
// sends nothing more for them; a result or failure already on its way may
// still arrive, and the server ignores it. Unknown ids are ignored.
type Cancel struct {
	TaskIDs []uint64
}

// Type returns TypeCancel.
func (*Cancel) Type() Type { return TypeCancel }

func (c *Cancel) appendBody(dst []byte) []byte {
	dst = appendCount(dst, len(c.TaskIDs))
	for _, id := range c.TaskIDs {
		dst = appendU64(dst, id)
	}
	return dst
}

func decodeCancel(r *reader) *Cancel {
	c := &Cancel{TaskIDs: make([]uint64, r.count("task ids", 8))}
	for i := range c.TaskIDs {
		c.TaskIDs[i] = r.u64("task id")
	}
	return c
}
