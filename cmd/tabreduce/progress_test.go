package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.Local)

func at(d time.Duration) *time.Time {
	t := t0.Add(d)
	return &t
}

func status(state engine.State, mapDone, mapTotal, redDone, redTotal int) engine.Status {
	return engine.Status{ID: "j1", State: state, Submitted: t0, Spec: engine.Spec{Reducers: redTotal}, Phases: map[engine.Phase]engine.PhaseCounts{
		engine.PhaseMap:    {Total: mapTotal, Done: mapDone, Pending: mapTotal - mapDone},
		engine.PhaseReduce: {Total: redTotal, Done: redDone, Pending: redTotal - redDone},
	}}
}

func TestProgress(t *testing.T) {
	mapping := status(engine.StateMapping, 5, 10, 0, 4)
	mapping.Started, mapping.BytesIn = at(0), 100e6
	reducing := status(engine.StateReducing, 10, 10, 2, 4)
	reducing.Started, reducing.MapDone, reducing.BytesIn = at(0), at(20*time.Second), 100e6
	tests := []struct {
		name string
		st   engine.Status
		now  time.Duration
		line string
		bar  string
	}{
		{"queued", status(engine.StateQueued, 0, 0, 0, 0), 0, "queued    map 0/0  reduce 0/0", "[----------]"},
		{"mapping", mapping, 10 * time.Second, "mapping   map 5/10  reduce 0/4  5.0 MB/s  ETA 18s", "[###-------]"},
		{"reducing", reducing, 24 * time.Second, "reducing  map 10/10  reduce 2/4  5.0 MB/s  ETA 4s", "[########--]"},
		{"done", status(engine.StateDone, 10, 10, 4, 4), time.Minute, "done      map 10/10  reduce 4/4", "[##########]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := progressOf(tt.st, t0.Add(tt.now))
			if got := p.String(); got != tt.line {
				t.Errorf("line: want %q, got %q", tt.line, got)
			}
			if got := p.bar(10); got != tt.bar {
				t.Errorf("bar: want %q, got %q", tt.bar, got)
			}
		})
	}
}

func TestProgressPrinter(t *testing.T) {
	var out bytes.Buffer
	now := t0
	pp := &progressPrinter{w: &out, now: func() time.Time { return now }}
	show := func(after time.Duration, st engine.Status) {
		now = now.Add(after)
		pp.show(apiclient.Job{Status: st})
	}
	show(0, status(engine.StateQueued, 0, 0, 0, 0))
	show(time.Second, status(engine.StateMapping, 0, 4, 0, 1)) // state changed
	show(time.Second, status(engine.StateMapping, 1, 4, 0, 1)) // too soon
	show(5*time.Second, status(engine.StateMapping, 2, 4, 0, 1))
	pp.end()
	want := "job j1: queued    map 0/0  reduce 0/0\n" +
		"job j1: mapping   map 0/4  reduce 0/1\n" +
		"job j1: mapping   map 2/4  reduce 0/1\n"
	if out.String() != want {
		t.Errorf("plain lines:\nwant %q\ngot  %q", want, out.String())
	}

	out.Reset()
	pp = &progressPrinter{w: &out, terminal: true, now: func() time.Time { return now }}
	show(0, status(engine.StateMapping, 10, 20, 0, 1))
	show(0, status(engine.StateDone, 2, 2, 1, 1)) // shorter: padded over the last
	pp.end()
	want = "\r[#########-----------] mapping   map 10/20  reduce 0/1" +
		"\r[####################] done      map 2/2  reduce 1/1  \n"
	if out.String() != want {
		t.Errorf("terminal:\nwant %q\ngot  %q", want, out.String())
	}
}

// TestProgressCountsReducersAhead: while mapping, the reduce tasks yet to
// come count, so the bar does not go back when they appear.
func TestProgressCountsReducersAhead(t *testing.T) {
	st := status(engine.StateMapping, 6, 6, 0, 0)
	st.Spec.Reducers = 4
	if p := progressOf(st, t0); p.String() != "mapping   map 6/6  reduce 0/4" || p.bar(10) != "[######----]" {
		t.Errorf("got %q %s", p.String(), p.bar(10))
	}
}
