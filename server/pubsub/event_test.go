package pubsub

import (
	"testing"
	"time"
)

func TestEventFrame(t *testing.T) {
	joined := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	member := Member{ID: "abc", RemoteAddr: "10.0.0.7:5", UserAgent: "ua", Joined: joined}
	for _, tc := range []struct {
		name string
		ev   Event
		want string
	}{
		{"text", Event{Type: EventMessage, Channel: "c", From: "abc", Data: []byte(`hi "there"`)},
			`{"type":"message","channel":"c","from":"abc","data":"hi \"there\""}`},
		{"empty text", Event{Type: EventMessage, Channel: "c", From: FromHTTP},
			`{"type":"message","channel":"c","from":"http","data":""}`},
		{"binary", Event{Type: EventMessage, Channel: "c", From: "abc", Data: []byte{0, 1, 2}, Binary: true},
			`{"type":"message","channel":"c","from":"abc","data_b64":"AAEC"}`},
		{"binary that is valid text", Event{Type: EventMessage, Channel: "c", From: "abc", Data: []byte("hi"), Binary: true},
			`{"type":"message","channel":"c","from":"abc","data_b64":"aGk="}`},
		{"empty binary", Event{Type: EventMessage, Channel: "c", From: "abc", Binary: true},
			`{"type":"message","channel":"c","from":"abc","data_b64":""}`},
		{"text that is not UTF-8", Event{Type: EventMessage, Channel: "c", From: FromHTTP, Data: []byte{0xff, 'a'}},
			`{"type":"message","channel":"c","from":"http","data_b64":"/2E="}`},
		{"join", Event{Type: EventJoin, Channel: "c", Member: member},
			`{"type":"join","channel":"c","member":{"id":"abc","remote_addr":"10.0.0.7:5","user_agent":"ua","joined":"2025-01-02T15:04:05Z"}}`},
		{"leave", Event{Type: EventLeave, Channel: "c", Member: member},
			`{"type":"leave","channel":"c","member":{"id":"abc","remote_addr":"10.0.0.7:5","user_agent":"ua","joined":"2025-01-02T15:04:05Z"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(newEvent(tc.ev).Frame()); got != tc.want {
				t.Errorf("Frame =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
