package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// RestMQ's JSON protocol, POST /queue, answers as dispatch.py does: one JSON
// document per command, and status 200 with {"error": ...} for an empty
// queue or an unknown command (restmqAnswer). Malformed input is a 400.
//
//	add  → {"queue","value","key"}
//	get  → {"queue","value","key","count"}  (soft: the message stays, count rises)
//	take → {"queue","value","key"}
//	del  → {"queue","deleted":true|false,"key"}

// protocolCmd is one command of RestMQ's JSON protocol.
type protocolCmd struct {
	Cmd   string          `json:"cmd"`
	Queue string          `json:"queue"`
	Value json.RawMessage `json:"value"`
	Key   string          `json:"key"`
	TTL   float64         `json:"ttl"`
}

// protocolAnswer is every successful answer of the JSON protocol; each
// command sets the fields RestMQ gives it.
type protocolAnswer struct {
	Queue    string          `json:"queue"`
	Value    json.RawMessage `json:"value,omitempty"`
	Encoding string          `json:"encoding,omitempty"`
	Deleted  *bool           `json:"deleted,omitempty"`
	Key      string          `json:"key"`
	Count    *int64          `json:"count,omitempty"`
}

// protocolHelp is GET /queue: RestMQ's redirect to its help page.
func protocolHelp(c echo.Context) error { return c.Redirect(http.StatusFound, HelpPath) }

// jsonProtocol is POST /queue: the JSON in form field body (or msg), or a
// raw JSON body.
func (a *API) jsonProtocol(c echo.Context) error {
	m, _, err := readMessage(c, []string{"body", "msg"})
	if err != nil {
		return err
	}
	cmd, err := parseProtocolCmd(m.Value)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	switch cmd.Cmd {
	case "add":
		ttl, err := seconds("ttl", cmd.TTL)
		if err != nil {
			return err
		}
		msgs, err := a.broker.Push(ctx, cmd.Queue, []broker.NewMessage{{Value: protocolValue(cmd.Value), TTL: ttl}})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, protocolAnswer{Queue: cmd.Queue, Value: cmd.Value, Key: msgs[0].Key()})
	case "get", "take":
		get := a.broker.Peek
		if cmd.Cmd == "take" {
			get = a.broker.Take
		}
		m, err := get(ctx, cmd.Queue)
		switch {
		case errors.Is(err, broker.ErrQueueEmpty):
			return errRestMQEmpty
		case errors.Is(err, broker.ErrQueuePaused):
			return errRestMQPaused
		case err != nil:
			return err
		}
		out := protocolAnswer{Queue: cmd.Queue, Key: m.Key()}
		v, enc := encodeValue(m.Value)
		out.Value, _ = json.Marshal(v)
		out.Encoding = enc
		if cmd.Cmd == "get" {
			out.Count = &m.Count
		}
		return c.JSON(http.StatusOK, out)
	case "del":
		q, _, _ := broker.ParseKey(cmd.Key) // checked by parseProtocolCmd
		if cmd.Queue != "" {
			q = cmd.Queue
		}
		err := a.broker.Delete(ctx, cmd.Key)
		if err != nil && !errors.Is(err, broker.ErrMessageNotFound) {
			return err
		}
		deleted := err == nil
		return c.JSON(http.StatusOK, protocolAnswer{Queue: q, Deleted: &deleted, Key: cmd.Key})
	}
	return errRestMQNoSuch
}

// parseProtocolCmd decodes and checks one JSON-protocol command. A command
// it does not know passes: RestMQ answers it with "null resultset".
func parseProtocolCmd(raw []byte) (protocolCmd, error) {
	var cmd protocolCmd
	if err := json.Unmarshal(raw, &cmd); err != nil {
		return cmd, badRequest("malformed JSON command: %v", err)
	}
	switch cmd.Cmd {
	case "add", "get", "take":
		if err := broker.CheckQueueName(cmd.Queue); err != nil {
			return cmd, err
		}
	case "del":
		if _, _, err := broker.ParseKey(cmd.Key); err != nil {
			return cmd, err
		}
	case "":
		return cmd, badRequest(`the JSON command needs "cmd": add, get, take or del`)
	}
	if cmd.Cmd == "add" && len(cmd.Value) == 0 {
		return cmd, badRequest(`add needs "value"`)
	}
	return cmd, nil
}

// protocolValue is the message of an add: a JSON string's text, or any other
// JSON value as its JSON text.
func protocolValue(v json.RawMessage) []byte {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return []byte(s)
	}
	return []byte(v)
}
