package workerproto

import "fmt"

// Decode decodes one frame of at most DefaultMaxFrameBytes. See DecodeLimit.
func Decode(frame []byte) (Frame, error) { return DecodeLimit(frame, DefaultMaxFrameBytes) }

// DecodeLimit decodes one frame and returns it as its concrete type (*Hello,
// *Welcome, …). It refuses a frame longer than maxFrame bytes (ErrTooLarge),
// a version other than Version, an unknown type, truncated fields, bytes
// left after the body and out-of-range values; it never panics on any input.
// Byte fields of the result alias frame, so the caller must not reuse frame
// while it uses them.
func DecodeLimit(frame []byte, maxFrame int) (Frame, error) {
	if len(frame) > maxFrame {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(frame), maxFrame)
	}
	if len(frame) < 2 {
		return nil, fmt.Errorf("%w: %d-byte frame has no header", ErrTruncated, len(frame))
	}
	if frame[0] != Version {
		return nil, fmt.Errorf("%w: %d (want %d)", ErrVersion, frame[0], Version)
	}
	r := &reader{buf: frame[2:]}
	var f Frame
	switch t := Type(frame[1]); t {
	case TypeHello:
		f = decodeHello(r)
	case TypeWelcome:
		f = decodeWelcome(r)
	case TypeTasks:
		f = decodeTasks(r)
	case TypeResults:
		f = decodeResults(r)
	case TypeFailures:
		f = decodeFailures(r)
	case TypeHeartbeat:
		f = decodeHeartbeat(r)
	case TypeCancel:
		f = decodeCancel(r)
	case TypeError:
		f = decodeError(r)
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnknownType, t)
	}
	r.end()
	if r.err != nil {
		return nil, fmt.Errorf("%s: %w", Type(frame[1]), r.err)
	}
	return f, nil
}
