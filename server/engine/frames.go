package engine

import (
	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// No frame is larger than its receiver accepts. A worker reads frames of
// up to Config.WorkerFrameBytes (wp.DefaultMaxFrameBytes: it sets that
// limit when it connects, before it hears from the server), so every TASKS
// frame the engine sends fits in it: tasks are packed into as many frames as it takes, and a task's input
// is sized so that the task alone fits (taskInputLimit). What cannot be
// made to fit (a line longer than a task, a key whose values are larger)
// fails its job with an error that says so.

// taskInputLimit is the most input one task of j's phase p may carry: the
// engine's MaxTaskBytes, less what the rest of the task takes in a frame of
// its own.
func (e *Engine) taskInputLimit(j *job, p Phase) int {
	header := wp.Task{Job: j.rec.ID, Module: j.rec.Module, Params: j.mapParams}
	if p == PhaseReduce {
		header.Params = j.reduceParams
	}
	return min(e.cfg.MaxTaskBytes, e.cfg.WorkerFrameBytes-wp.TasksFrameSize(header))
}

// outFrames collects the tasks a dispatch round (or a preparer) sends, by
// session.
type outFrames struct {
	limit int // the largest frame a worker reads
	tasks map[*session][]wp.Task
}

func (e *Engine) newFrames() *outFrames {
	return &outFrames{limit: e.cfg.WorkerFrameBytes, tasks: map[*session][]wp.Task{}}
}

func (f *outFrames) add(s *session, t wp.Task) { f.tasks[s] = append(f.tasks[s], t) }

// send packs each session's tasks into TASKS frames of at most f.limit
// bytes and queues them.
func (f *outFrames) send() {
	for s, ts := range f.tasks {
		for _, frame := range packTasks(ts, f.limit) {
			s.send(frame)
		}
	}
}

// packTasks encodes tasks into as few TASKS frames of at most limit bytes
// as it can, in order. A task too large for a frame of its own (which the
// sizing of inputs prevents) still gets one: the worker refuses it, and the
// task fails rather than vanishing.
func packTasks(ts []wp.Task, limit int) [][]byte {
	var frames [][]byte
	for len(ts) > 0 {
		n, size := 0, wp.TasksFrameSize()
		for n < len(ts) {
			next := wp.TasksFrameSize(ts[n]) - wp.TasksFrameSize()
			if n > 0 && size+next > limit {
				break
			}
			size += next
			n++
		}
		frames = append(frames, wp.Encode(&wp.Tasks{Tasks: ts[:n]}))
		ts = ts[n:]
	}
	return frames
}
