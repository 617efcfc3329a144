package workerproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// validFrames holds one or more frames of every type; the round-trip test
// and the fuzz seeds use them.
func validFrames() map[string]Frame {
	return map[string]Frame{
		"hello":            &Hello{Protocol: ProtocolVersion, Kind: KindNative, Slots: 8, UserAgent: "tabreduce/dev (linux/amd64)", Name: "box-1"},
		"hello browser":    &Hello{Protocol: 7, Kind: KindBrowser, Slots: 1, UserAgent: "Mozilla/5.0"},
		"welcome":          &Welcome{WorkerID: "w-42", HeartbeatInterval: 5 * time.Second, MaxResultBytes: 64 << 20, PrefetchPerSlot: 2},
		"tasks empty list": &Tasks{Tasks: []Task{}},
		"tasks": &Tasks{Tasks: []Task{
			{ID: 1, Job: "j1", Phase: PhaseMap, Module: sha, Params: []byte(`{"pattern":"x"}`), Reducers: 4, Flags: FlagCombine,
				Attempt: 1, Timeout: time.Minute, Offset: 1 << 40, Input: []byte("a b\nc\n")},
			{ID: 1<<64 - 1, Job: "j1", Phase: PhaseReduce, Module: sha, Params: []byte{}, Reducers: 4, Attempt: 3,
				Input: abi.EncodeGroups([]abi.Pair{{Key: []byte("a"), Value: []byte("1")}})},
		}},
		"results": &Results{Results: []Result{
			{TaskID: 1, Elapsed: 1500 * time.Microsecond, Counters: abi.Counters{{Name: "lines", Value: 2}, {Name: "neg", Value: -1}},
				Partitions: [][]byte{abi.AppendPair(nil, []byte("a"), []byte("1")), {}, {}}},
			{TaskID: 2, Partitions: [][]byte{}},
		}},
		"failures":  &Failures{Failures: []Failure{{TaskID: 9, Kind: FailureJob, Message: "panic: boom"}, {TaskID: 10, Kind: FailureInternal}}},
		"heartbeat": &Heartbeat{FreeSlots: 3, Progress: []Progress{{TaskID: 5, Percent: 0}, {TaskID: 6, Percent: 100}}},
		"cancel":    &Cancel{TaskIDs: []uint64{1, 2, 3}},
		"error":     &Error{Code: CodeInvalid, Message: "HELLO expected"},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, f := range validFrames() {
		t.Run(name, func(t *testing.T) {
			b := Encode(f)
			if b[0] != Version || Type(b[1]) != f.Type() {
				t.Fatalf("header % x, want version %d type %s", b[:2], Version, f.Type())
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, f) {
				t.Fatalf("decoded %+v\nwant    %+v", got, f)
			}
			if re := Encode(got); !bytes.Equal(re, b) {
				t.Fatalf("re-encoded % x\nwant % x", re, b)
			}
		})
	}
}

// TestLayout pins the exact bytes of a frame, so that a change of the wire
// format cannot pass as a refactoring: docs/PROTOCOL.md shows the same bytes.
func TestLayout(t *testing.T) {
	got := Encode(&Hello{Protocol: 2, Kind: KindBrowser, Slots: 2, UserAgent: "ua", Name: ""})
	want := []byte{1, 0x01, 2, 0, 1, 2, 0, 2, 0, 0, 0, 'u', 'a', 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("HELLO = % x, want % x", got, want)
	}
	got = Encode(&Cancel{TaskIDs: []uint64{0x0102}})
	want = []byte{1, 0x07, 1, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("CANCEL = % x, want % x", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	task := func(mod func(*Task)) []byte {
		tk := Task{ID: 1, Job: "j", Phase: PhaseMap, Module: sha, Reducers: 2}
		mod(&tk)
		return Encode(&Tasks{Tasks: []Task{tk}})
	}
	frame := func(t Type, body ...byte) []byte { return append([]byte{Version, byte(t)}, body...) }
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	hello := Encode(&Hello{Protocol: 1, Kind: KindNative, Slots: 1, UserAgent: "ua", Name: "n"})
	unsorted := abi.AppendCounters(nil, abi.Counters{{Name: "b"}, {Name: "a"}})
	badCounters := append(frame(TypeResults, u32(1)...), make([]byte, 12)...)
	badCounters = append(append(badCounters, u32(uint32(len(unsorted)))...), unsorted...)
	badCounters = append(badCounters, u32(0)...)
	tests := []struct {
		name    string
		in      []byte
		want    error
		mention string
	}{
		{"empty", nil, ErrTruncated, "header"},
		{"version only", []byte{Version}, ErrTruncated, "header"},
		{"wrong version", []byte{2, byte(TypeHello)}, ErrVersion, "want 1"},
		{"unknown type", frame(0x09), ErrUnknownType, "0x09"},
		{"type zero", frame(0), ErrUnknownType, ""},
		{"hello truncated", hello[:len(hello)-1], ErrTruncated, "name"},
		{"hello trailing", append(hello, 0), ErrTrailing, "1 bytes"},
		{"hello bad kind", Encode(&Hello{Kind: 4, Slots: 1}), ErrInvalid, "kind 4"},
		{"hello no slots", Encode(&Hello{Kind: KindLocal}), ErrInvalid, "zero slots"},
		{"string over limit", frame(TypeError, u32(MaxStringBytes+1)...), ErrTooLarge, "code"},
		{"string past end", frame(TypeError, u32(5)...), ErrTruncated, "code"},
		{"length cut short", frame(TypeError, 5, 0), ErrTruncated, "code length"},
		{"count cut short", frame(TypeTasks, 1), ErrTruncated, "tasks count"},
		{"bytes past end", cut(task(func(t *Task) { t.Input = []byte("abc") }), 1), ErrTruncated, "input"},
		{"count past end", frame(TypeCancel, u32(2)...), ErrTruncated, "count 2"},
		{"huge count", frame(TypeTasks, u32(1<<32-1)...), ErrTruncated, "tasks count"},
		{"task bad phase", task(func(t *Task) { t.Phase = 3 }), ErrInvalid, "phase 3"},
		{"task module not hex", task(func(t *Task) { t.Module = strings.ToUpper(sha) }), ErrInvalid, "sha256"},
		{"task module path", task(func(t *Task) { t.Module = "../../etc/passwd" }), ErrInvalid, "sha256"},
		{"task zero reducers", task(func(t *Task) { t.Reducers = 0 }), ErrInvalid, "0 reducers"},
		{"task too many reducers", task(func(t *Task) { t.Reducers = MaxReducers + 1 }), ErrInvalid, "reducers"},
		{"task unknown flag", task(func(t *Task) { t.Flags = 2 }), ErrInvalid, "flags"},
		{"reduce with combine", task(func(t *Task) { t.Phase, t.Flags = PhaseReduce, FlagCombine }), ErrInvalid, "reduce"},
		{"reduce with offset", task(func(t *Task) { t.Phase, t.Offset = PhaseReduce, 5 }), ErrInvalid, "reduce"},
		{"results unsorted counters", badCounters, ErrInvalid, "counters"},
		{"failure bad kind", Encode(&Failures{Failures: []Failure{{TaskID: 1, Kind: 6}}}), ErrInvalid, "kind 6"},
		{"failure kind zero", Encode(&Failures{Failures: []Failure{{TaskID: 1}}}), ErrInvalid, "kind 0"},
		{"heartbeat percent", Encode(&Heartbeat{Progress: []Progress{{TaskID: 1, Percent: 101}}}), ErrInvalid, "101 percent"},
		{"welcome truncated", Encode(&Welcome{WorkerID: "w"})[:9], ErrTruncated, "heartbeat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, %v; want %v", f, err, tt.want)
			}
			if f != nil {
				t.Fatalf("Decode returned a frame with error: %+v", f)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

// cut drops the last n bytes of b.
func cut(b []byte, n int) []byte { return b[:len(b)-n] }

func TestDecodeLimit(t *testing.T) {
	b := Encode(&Error{Code: "x", Message: strings.Repeat("m", 100)})
	if _, err := DecodeLimit(b, len(b)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := DecodeLimit(b, len(b)-1)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if CodeOf(err) != CodeTooLarge {
		t.Fatalf("CodeOf = %q", CodeOf(err))
	}
}

func TestCodeOf(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		want string
	}{
		{[]byte{9, 1}, CodeUnsupported},
		{[]byte{1, 99}, CodeInvalid},
		{[]byte{1}, CodeInvalid},
	} {
		if _, err := Decode(tt.in); CodeOf(err) != tt.want {
			t.Errorf("CodeOf(Decode(% x)) = %q, want %q (%v)", tt.in, CodeOf(err), tt.want, err)
		}
	}
}

func TestAliasing(t *testing.T) {
	b := Encode(&Tasks{Tasks: []Task{{ID: 1, Phase: PhaseMap, Module: sha, Reducers: 1, Input: []byte("xy")}}})
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	in := f.(*Tasks).Tasks[0].Input
	if cap(in) != len(in) {
		t.Fatalf("input capacity %d, want clipped to %d", cap(in), len(in))
	}
	b[len(b)-1] = 'Z'
	if string(in) != "xZ" {
		t.Fatalf("input %q does not alias the frame", in)
	}
}

// TestDecodeSharesStrings: tasks in a row of a frame that name the same job
// and module get one copy of each string, not tied to the frame's bytes.
func TestDecodeSharesStrings(t *testing.T) {
	tasks := []Task{
		{ID: 1, Job: "j1", Phase: PhaseMap, Module: sha, Reducers: 1},
		{ID: 2, Job: "j1", Phase: PhaseMap, Module: sha, Reducers: 1},
		{ID: 3, Job: "j2", Phase: PhaseMap, Module: sha, Reducers: 1},
		{ID: 4, Job: "j1", Phase: PhaseMap, Module: sha, Reducers: 1},
	}
	b := Encode(&Tasks{Tasks: tasks})
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := f.(*Tasks).Tasks
	clear(b)
	for i := range got {
		if got[i].Job != tasks[i].Job || got[i].Module != sha {
			t.Fatalf("task %d: job %q module %q, want %q %q", i, got[i].Job, got[i].Module, tasks[i].Job, sha)
		}
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	if !same(got[0].Job, got[1].Job) || !same(got[0].Module, got[1].Module) || !same(got[0].Module, got[2].Module) {
		t.Fatal("tasks of the same job and module hold copies of their own")
	}
}

func TestTypeNames(t *testing.T) {
	for ty := TypeHello; ty <= TypeError; ty++ {
		if strings.HasPrefix(ty.String(), "type(") {
			t.Errorf("type %d has no name", ty)
		}
	}
	if got := Type(0xab).String(); got != "type(0xab)" {
		t.Errorf("unknown type = %q", got)
	}
	if !TypeHello.FromWorker() || TypeTasks.FromWorker() || !TypeHeartbeat.FromWorker() || TypeError.FromWorker() {
		t.Error("FromWorker is wrong")
	}
}

func TestTasksFrameSize(t *testing.T) {
	tasks := []Task{
		{ID: 1, Job: "j", Phase: PhaseMap, Module: strings.Repeat("a", 64), Params: []byte(`{}`), Reducers: 1, Input: []byte("chunk")},
		{ID: 2, Job: "job-two", Phase: PhaseReduce, Module: strings.Repeat("b", 64), Reducers: 3, Input: make([]byte, 1000)},
	}
	for n := range len(tasks) + 1 {
		if got, want := TasksFrameSize(tasks[:n]...), len(Encode(&Tasks{Tasks: tasks[:n]})); got != want {
			t.Errorf("TasksFrameSize of %d tasks = %d, the encoding is %d bytes", n, got, want)
		}
	}
}
