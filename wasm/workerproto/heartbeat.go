package workerproto

// Heartbeat tells the server the worker is alive, how many slots are free
// and how far its running tasks are. A worker sends one every
// Welcome.HeartbeatInterval, whatever else it sends.
//
//	u16 free slots | list of (u64 task id | u8 percent done)
type Heartbeat struct {
	FreeSlots uint16
	Progress  []Progress
}

// Progress is a running task's rough completion, 0 to 100.
type Progress struct {
	TaskID  uint64
	Percent uint8
}

// Type returns TypeHeartbeat.
func (*Heartbeat) Type() Type { return TypeHeartbeat }

func (h *Heartbeat) appendBody(dst []byte) []byte {
	dst = appendU16(dst, h.FreeSlots)
	dst = appendCount(dst, len(h.Progress))
	for _, p := range h.Progress {
		dst = append(appendU64(dst, p.TaskID), p.Percent)
	}
	return dst
}

func decodeHeartbeat(r *reader) *Heartbeat {
	h := &Heartbeat{FreeSlots: r.u16("free slots")}
	h.Progress = make([]Progress, r.count("progress", 9))
	for i := range h.Progress {
		p := &h.Progress[i]
		p.TaskID = r.u64("task id")
		p.Percent = r.u8("percent")
		if r.err == nil && p.Percent > 100 {
			r.invalid("task %d: %d percent done", p.TaskID, p.Percent)
		}
	}
	return h
}
