package workerproto

import (
	"errors"

	"github.com/tabreduce/tabreduce/api"
)

// Errors returned by Decode. Each wraps the field where decoding stopped;
// CodeOf maps them to the code of the ERROR frame a server sends before it
// closes the session.
var (
	// ErrTruncated: the frame ends inside a field, or a count promises more
	// items than the bytes that remain can hold.
	ErrTruncated = errors.New("workerproto: truncated frame")
	// ErrTrailing: bytes remain after the last field of the body.
	ErrTrailing = errors.New("workerproto: trailing bytes after frame body")
	// ErrVersion: the frame's version byte is not Version.
	ErrVersion = errors.New("workerproto: unsupported frame version")
	// ErrUnknownType: the type byte names no frame.
	ErrUnknownType = errors.New("workerproto: unknown frame type")
	// ErrTooLarge: the frame, or one of its strings, exceeds its limit.
	ErrTooLarge = errors.New("workerproto: frame too large")
	// ErrInvalid: a field holds a value outside its range (an unknown phase,
	// kind or flag, a module hash that is not 64 lower-case hex digits,
	// unsorted counters).
	ErrInvalid = errors.New("workerproto: invalid field")
)

// Error codes of ERROR frames: the HTTP API's codes (package api), so a
// client learns one vocabulary.
const (
	CodeInvalid      = string(api.CodeInvalid)      // malformed frame, or a frame out of turn
	CodeTooLarge     = string(api.CodeTooLarge)     // a frame or result above a limit
	CodeNotFound     = string(api.CodeNotFound)     // a task or module the server does not know
	CodeUnsupported  = string(api.CodeUnsupported)  // frame or protocol version not spoken
	CodeUnauthorized = string(api.CodeUnauthorized) // the session lacks a required token
	CodeUnavailable  = string(api.CodeUnavailable)  // the server is shutting down
	CodeInternal     = string(api.CodeInternal)     // a server bug
)

// CodeOf returns the ERROR code for a decoding error: CodeTooLarge,
// CodeUnsupported, or CodeInvalid for every other malformed frame.
func CodeOf(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrVersion):
		return CodeUnsupported
	}
	return CodeInvalid
}
