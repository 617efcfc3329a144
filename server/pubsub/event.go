package pubsub

import (
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// EventType says what an Event reports.
type EventType string

// Event types.
const (
	// EventMessage is a message published to the channel.
	EventMessage EventType = "message"
	// EventJoin is a subscriber joining the channel.
	EventJoin EventType = "join"
	// EventLeave is a subscriber leaving the channel or being dropped.
	EventLeave EventType = "leave"
)

// FromHTTP is the From of messages published by Publish callers that are not
// subscribers (POST /pub/{channel}).
const FromHTTP = "http"

// Member is one subscriber as presence lists it.
type Member struct {
	ID         string    `json:"id"`
	RemoteAddr string    `json:"remote_addr"`
	UserAgent  string    `json:"user_agent"`
	Joined     time.Time `json:"joined"`
	// Server names the server the member is connected to (Config.Server),
	// when the Hub is one of several.
	Server string `json:"server,omitempty"`
}

// Event is one thing delivered to every subscriber of a channel: a message,
// a join or a leave. Events are shared by all their receivers and must not be
// modified.
type Event struct {
	Type    EventType
	Channel string
	// From is the id of the subscriber that sent a message, or FromHTTP.
	From string
	// Data is a message's payload.
	Data []byte
	// Binary is set when Data is not text: it came in a binary frame or is
	// not valid UTF-8. Such data is encoded in base64.
	Binary bool
	// Member is who joined or left.
	Member Member

	frame []byte
}

// Envelope is the JSON form of an Event, as Event.Frame encodes it and as
// clients may decode it. Data is set for text messages, DataB64 (standard
// base64) for binary ones, Member for joins and leaves.
type Envelope struct {
	Type    EventType `json:"type"`
	Channel string    `json:"channel"`
	From    string    `json:"from,omitempty"`
	Data    *string   `json:"data,omitempty"`
	DataB64 *string   `json:"data_b64,omitempty"`
	Member  *Member   `json:"member,omitempty"`
}

// newEvent builds an event and encodes its frame once, for all receivers.
func newEvent(e Event) *Event {
	env := Envelope{Type: e.Type, Channel: e.Channel}
	switch e.Type {
	case EventMessage:
		env.From = e.From
		e.Binary = e.Binary || !utf8.Valid(e.Data)
		s := string(e.Data)
		if e.Binary {
			s = base64.StdEncoding.EncodeToString(e.Data)
			env.DataB64 = &s
		} else {
			env.Data = &s
		}
	default:
		env.Member = &e.Member
	}
	frame, err := json.Marshal(env)
	if err != nil {
		// Every field is a string, []byte or time.Time: Marshal cannot fail.
		panic("pubsub: encoding event: " + err.Error())
	}
	e.frame = frame
	return &e
}

// Frame is the event as one JSON text frame:
//
//	{"type":"message","channel":"c","from":"<id>|http","data":"<text>"}
//	{"type":"message","channel":"c","from":"<id>|http","data_b64":"<base64>"}
//	{"type":"join"|"leave","channel":"c","member":{"id":..,"remote_addr":..,"user_agent":..,"joined":"<RFC 3339>"}}
//
// A message carries "data" when it is text and "data_b64" when it is binary.
// The returned slice is shared and must not be modified.
func (e *Event) Frame() []byte { return e.frame }
