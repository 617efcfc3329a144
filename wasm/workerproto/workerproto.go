// Package workerproto is the binary frame codec of the worker protocol: the
// messages a worker (a browser tab, a native process, an in-process goroutine)
// and the server exchange over one WebSocket at GET /api/v1/ws/worker. docs/PROTOCOL.md
// specifies the layout for implementers in other languages; this package
// implements it for the server and the native worker.
//
// Every WebSocket binary message is one frame:
//
//	u8 version (= Version) | u8 type | body
//
// Integers are little-endian; strings and byte fields are u32 length | bytes;
// lists are u32 count | items. The framing is written by hand, like the job
// ABI (package abi), so that a browser decodes it in a few lines of DataView
// and payloads (chunks, pair streams) travel as raw bytes.
//
// Decoding never panics and never trusts a length or a count: each is checked
// against the bytes that remain before anything is allocated. Decoded byte
// fields (Task.Params, Task.Input, Result.Partitions) alias the frame they
// were decoded from; strings are copies.
package workerproto

// Version is the frame format version, the first byte of every frame. A
// decoder refuses any other.
const Version = 1

// ProtocolVersion is the protocol version a worker announces in HELLO. It
// changes when the meaning of messages changes even if their layout does not.
// Version 2: a task of a command module carries the command's arguments
// and environment as its params (abi.AppendCommandParams).
const ProtocolVersion = 2

// Limits of the codec. DefaultMaxFrameBytes bounds a whole frame unless the
// caller passes its own limit to DecodeLimit.
const (
	DefaultMaxFrameBytes = 64 << 20
	// MaxStringBytes bounds every string field (names, ids, messages).
	MaxStringBytes = 64 << 10
	// MaxReducers bounds R, the number of reduce partitions.
	MaxReducers = 1 << 12
)

// Type is a frame's type byte: the verb of the protocol.
type Type uint8

// The frame types. The comment says who sends it.
const (
	TypeHello     Type = 0x01 // worker → server, first frame of a session
	TypeWelcome   Type = 0x02 // server → worker, the answer to HELLO
	TypeTasks     Type = 0x03 // server → worker
	TypeResults   Type = 0x04 // worker → server
	TypeFailures  Type = 0x05 // worker → server
	TypeHeartbeat Type = 0x06 // worker → server
	TypeCancel    Type = 0x07 // server → worker
	TypeError     Type = 0x08 // server → worker, before it closes the session
)

var typeNames = [...]string{
	TypeHello: "HELLO", TypeWelcome: "WELCOME", TypeTasks: "TASKS", TypeResults: "RESULTS",
	TypeFailures: "FAILURES", TypeHeartbeat: "HEARTBEAT", TypeCancel: "CANCEL", TypeError: "ERROR",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "type(0x" + hex2(byte(t)) + ")"
}

// FromWorker reports whether workers send frames of this type; a server
// refuses the others from a worker, and a worker refuses these from a server.
func (t Type) FromWorker() bool {
	return t == TypeHello || t == TypeResults || t == TypeFailures || t == TypeHeartbeat
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// A Frame is one decoded message: *Hello, *Welcome, *Tasks, *Results,
// *Failures, *Heartbeat, *Cancel or *Error. Receivers route them through one
// type switch.
type Frame interface {
	// Type is the frame's type byte.
	Type() Type
	// appendBody appends the body (everything after the type byte).
	appendBody(dst []byte) []byte
}

// Append appends the encoding of f to dst and returns the extended slice. It
// does not validate f: encoding a value that Decode would refuse (a phase of
// 0, an unsorted counter set) produces a frame the peer refuses.
func Append(dst []byte, f Frame) []byte {
	dst = append(dst, Version, byte(f.Type()))
	return f.appendBody(dst)
}

// Encode returns the encoding of f in a new slice.
func Encode(f Frame) []byte { return Append(nil, f) }
