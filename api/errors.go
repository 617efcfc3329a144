package api

import (
	"errors"
	"fmt"
)

// Code is a machine-readable error code. Every HTTP error answer carries
// one, {"code": ..., "error": ...}, and so does the worker protocol's ERROR
// frame.
type Code string

// The codes, and the HTTP status each is answered with.
const (
	CodeInvalid         Code = "invalid"            // 400: malformed or out-of-range input
	CodeUnauthorized    Code = "unauthorized"       // 401: a token is needed, or this one is refused
	CodeForbidden       Code = "forbidden"          // 403: not allowed from here (a foreign origin)
	CodeNotFound        Code = "not_found"          // 404: no such queue, message, lease, key, job or module
	CodeMethod          Code = "method_not_allowed" // 405
	CodeConflict        Code = "conflict"           // 409: the thing is not in a state that allows it
	CodeTooLarge        Code = "too_large"          // 413: a body, frame or result above a limit
	CodeUnsupported     Code = "unsupported"        // 415: a media type, frame or protocol version not spoken
	CodeUpgradeRequired Code = "upgrade_required"   // 426: the route needs a WebSocket handshake
	CodeTooMany         Code = "too_many"           // 429: a rate or connection limit
	CodeInternal        Code = "internal"           // 500: a server bug
	CodeUnavailable     Code = "unavailable"        // 503: shutting down, or a dependency is down
)

// Error is an error with a code: what the server answers and what a client
// receives. errors.Is(err, ErrNotFound) holds for any *Error whose code is
// CodeNotFound, so callers branch on codes, never on text.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is an *Error of the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf returns an *Error of code with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Sentinels to match with errors.Is, one per code callers branch on.
var (
	ErrInvalid     = &Error{Code: CodeInvalid, Message: "invalid argument"}
	ErrNotFound    = &Error{Code: CodeNotFound, Message: "not found"}
	ErrConflict    = &Error{Code: CodeConflict, Message: "conflict"}
	ErrTooLarge    = &Error{Code: CodeTooLarge, Message: "too large"}
	ErrUnavailable = &Error{Code: CodeUnavailable, Message: "unavailable"}
)

// CodeOf returns the code of err: its own if it is (or wraps) an *Error,
// else CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
