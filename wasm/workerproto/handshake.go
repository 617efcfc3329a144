package workerproto

import "time"

// Kind is what sort of worker a session serves.
type Kind uint8

// Worker kinds.
const (
	KindBrowser Kind = 1 // a browser tab running modules on the browser's wasm engine
	KindNative  Kind = 2 // a `tabreduce worker` process
	KindLocal   Kind = 3 // in-process, started by `tabreduce serve --local-workers`
)

func (k Kind) String() string {
	switch k {
	case KindBrowser:
		return "browser"
	case KindNative:
		return "native"
	case KindLocal:
		return "local"
	}
	return "unknown"
}

// Hello opens a session: the worker says what it is and how many tasks it
// runs at once. It must be the first frame a worker sends; the server answers
// with Welcome, or with Error and a close.
//
//	u16 protocol | u8 kind | u16 slots | str user agent | str name
type Hello struct {
	// Protocol is the ProtocolVersion the worker speaks.
	Protocol uint16
	Kind     Kind
	// Slots is how many tasks the worker runs at once, at least 1.
	Slots uint16
	// UserAgent is the browser's navigator.userAgent, or the native worker's
	// "tabreduce/<version> (<os>/<arch>)".
	UserAgent string
	// Name is an optional label chosen by whoever started the worker.
	Name string
}

// Type returns TypeHello.
func (*Hello) Type() Type { return TypeHello }

func (h *Hello) appendBody(dst []byte) []byte {
	dst = appendU16(dst, h.Protocol)
	dst = append(dst, byte(h.Kind))
	dst = appendU16(dst, h.Slots)
	dst = appendString(dst, h.UserAgent)
	return appendString(dst, h.Name)
}

func decodeHello(r *reader) *Hello {
	h := &Hello{
		Protocol:  r.u16("protocol"),
		Kind:      Kind(r.u8("kind")),
		Slots:     r.u16("slots"),
		UserAgent: r.string("user agent"),
		Name:      r.string("name"),
	}
	if h.Kind < KindBrowser || h.Kind > KindLocal {
		r.invalid("worker kind %d", h.Kind)
	}
	if h.Slots == 0 {
		r.invalid("zero slots")
	}
	return h
}

// Welcome accepts a session and tells the worker the server's terms.
//
//	str worker id | u32 heartbeat interval ms | u32 max result bytes | u16 prefetch per slot
type Welcome struct {
	// WorkerID is the id the server gave this session; logs on both sides
	// carry it.
	WorkerID string
	// HeartbeatInterval is how often the worker sends Heartbeat. Sent in
	// whole milliseconds; a server that hears nothing for a few intervals
	// drops the session and reassigns its tasks.
	HeartbeatInterval time.Duration
	// MaxResultBytes bounds the partitions of one result; a task whose output
	// is larger fails with FailureTooLarge instead.
	MaxResultBytes uint32
	// PrefetchPerSlot is how many tasks per slot the server may have
	// assigned to the worker and not yet answered: running ones included, so
	// 1 means no queue and 2 one task waiting behind each running one.
	PrefetchPerSlot uint16
}

// Type returns TypeWelcome.
func (*Welcome) Type() Type { return TypeWelcome }

func (w *Welcome) appendBody(dst []byte) []byte {
	dst = appendString(dst, w.WorkerID)
	dst = appendU32(dst, millis(w.HeartbeatInterval))
	dst = appendU32(dst, w.MaxResultBytes)
	return appendU16(dst, w.PrefetchPerSlot)
}

func decodeWelcome(r *reader) *Welcome {
	return &Welcome{
		WorkerID:          r.string("worker id"),
		HeartbeatInterval: time.Duration(r.u32("heartbeat interval")) * time.Millisecond,
		MaxResultBytes:    r.u32("max result bytes"),
		PrefetchPerSlot:   r.u16("prefetch per slot"),
	}
}
