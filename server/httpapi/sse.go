package httpapi

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/tabreduce/tabreduce/server/broker"
)

// Server-Sent Events: GET /c/{queue} and GET /pub/{channel} answer as
// text/event-stream when the client asks for it (an EventSource sends
// Accept: text/event-stream). A queue's message is one event whose id is
// the message's key and whose data is the JSON COMET writes; a channel's
// message is one event whose data is the payload (see pubsub.go).

// wantsEventStream reports whether the client asks for Server-Sent Events.
func wantsEventStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// sseMessage is a queue's message as one event.
func sseMessage(m broker.Message) []byte {
	b, _ := json.Marshal(toMessageJSON(m)) // strings only: cannot fail
	return sseEvent("", m.Key(), b)
}

// sseEvent formats one event: an optional event type and id, and data, each
// of whose lines becomes a "data:" field (so a lone CR arrives as LF). Neither event nor id may hold a
// line break (queue names and our event names cannot).
func sseEvent(event, id string, data []byte) []byte {
	var b bytes.Buffer
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	// Every line break (CRLF, LF or CR) ends a data line; the client joins
	// them again with LF.
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}
