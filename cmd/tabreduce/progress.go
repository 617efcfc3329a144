package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

// How often `submit --wait` polls and, off a terminal, prints a line.
const (
	pollTerminal = 500 * time.Millisecond
	pollPlain    = time.Second
	plainEvery   = 5 * time.Second
	barWidth     = 20
)

// progress is what `submit --wait` shows of a running job.
type progress struct {
	state             engine.State
	mapDone, mapTotal int
	redDone, redTotal int
	done              float64       // fraction of all tasks done, 0 to 1
	rate              float64       // input bytes mapped per second; 0 if unknown
	eta               time.Duration // -1 if unknown
}

// progressOf reads a job's progress at now. The reduce tasks count from
// the start, so the share done never goes back; the rate counts the input
// the map tasks done stand for; the ETA assumes the tasks still to run go
// as fast as those done.
func progressOf(st engine.Status, now time.Time) progress {
	m, r := st.Phases[engine.PhaseMap], st.Phases[engine.PhaseReduce]
	if r.Total == 0 && !st.Spec.Stream { // reduce tasks appear once the map ends
		r.Total = st.Spec.Reducers
	}
	p := progress{state: st.State, mapDone: m.Done, mapTotal: m.Total, redDone: r.Done, redTotal: r.Total, eta: -1}
	if total := m.Total + r.Total; total > 0 {
		p.done = float64(m.Done+r.Done) / float64(total)
	}
	if st.Started == nil {
		return p
	}
	mapEnd := now
	if st.MapDone != nil {
		mapEnd = *st.MapDone
	}
	if d := mapEnd.Sub(*st.Started).Seconds(); d > 0 && m.Total > 0 {
		p.rate = float64(st.BytesIn) * float64(m.Done) / float64(m.Total) / d
	}
	if p.done > 0 && p.done < 1 {
		p.eta = time.Duration(float64(now.Sub(*st.Started)) * (1 - p.done) / p.done)
	}
	return p
}

// String is the progress as one line: "mapping  map 3/10  reduce 0/4
// 12.5 MB/s  ETA 40s".
func (p progress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s map %d/%d  reduce %d/%d", p.state, p.mapDone, p.mapTotal, p.redDone, p.redTotal)
	if p.rate > 0 {
		fmt.Fprintf(&b, "  %.1f MB/s", p.rate/1e6)
	}
	if p.eta >= 0 {
		fmt.Fprintf(&b, "  ETA %s", shortDuration(p.eta))
	}
	return b.String()
}

// bar draws the share of tasks done: [#######-------------].
func (p progress) bar(width int) string {
	n := min(max(int(p.done*float64(width)), 0), width)
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

// progressPrinter shows a waiting job's progress: on a terminal one line
// redrawn in place, otherwise a plain line every plainEvery and whenever
// the state changes.
type progressPrinter struct {
	w         io.Writer
	terminal  bool
	now       func() time.Time
	drawn     int // length of the line on a terminal
	lastLine  time.Time
	lastState engine.State
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, terminal: isTerminal(w), now: time.Now}
}

// pollEvery is how often the job should be polled for this printer.
func (pp *progressPrinter) pollEvery() time.Duration {
	if pp.terminal {
		return pollTerminal
	}
	return pollPlain
}

// show prints the job's progress if it is time to.
func (pp *progressPrinter) show(job apiclient.Job) {
	now := pp.now()
	p := progressOf(job.Status, now)
	if pp.terminal {
		line := p.bar(barWidth) + " " + p.String()
		fmt.Fprintf(pp.w, "\r%-*s", pp.drawn, line)
		pp.drawn = len(line)
		return
	}
	if job.State == pp.lastState && now.Sub(pp.lastLine) < plainEvery {
		return
	}
	fmt.Fprintf(pp.w, "job %s: %s\n", job.ID, p)
	pp.lastLine, pp.lastState = now, job.State
}

// end ends the redrawn line, so what follows starts on a line of its own.
func (pp *progressPrinter) end() {
	if pp.terminal && pp.drawn > 0 {
		fmt.Fprintln(pp.w)
		pp.drawn = 0
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
