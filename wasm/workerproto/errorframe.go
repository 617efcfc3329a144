package workerproto

// Error is the server's last word before it closes a session for a protocol
// violation or a refusal (a bad HELLO, a malformed frame, a frame out of
// turn, shutdown). Code is one of the Code constants; a worker logs Message.
// *Error is also an error, so a worker can return the one it received.
//
//	str code | str message
type Error struct {
	Code    string
	Message string
}

// Type returns TypeError.
func (*Error) Type() Type { return TypeError }

func (e *Error) Error() string { return "server: " + e.Code + ": " + e.Message }

func (e *Error) appendBody(dst []byte) []byte {
	return appendString(appendString(dst, e.Code), e.Message)
}

func decodeError(r *reader) *Error {
	return &Error{Code: r.string("code"), Message: r.string("message")}
}
