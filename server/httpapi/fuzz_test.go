package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
)

// FuzzParseBatch feeds arbitrary bodies to the batch parser in both modes:
// it never panics, refuses with ErrInvalid, and what it accepts has one
// message per item, a JSON string's text as the value of a string item.
func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`["a","b"]`, `[]`, `[1, true, null, {"x":1}]`, `[{"value":"v","ttl":1.5}]`,
		`[{"value_b64":"aGk="}]`, `[{"value":"v","value_b64":"aGk="}]`, `[{"ttl":-1}]`,
		`[{"ttl":1e300}]`, `[{"value_b64":"!"}]`, `{}`, `"a"`, `null`, ``, `[`,
		"\"a\"\n\n{\"value\":\"b\"}\r\n3\n", "\"a\"\n{", "[\"\\ud800\"]", "[\"\xff\"]",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		msgs, err := parseBatch(body, ndjson)
		if err != nil {
			if !errors.Is(err, broker.ErrInvalid) {
				t.Fatalf("parseBatch(%q, %v) = %v, want an ErrInvalid error", body, ndjson, err)
			}
			return
		}
		items := batchItems(t, body, ndjson)
		if len(msgs) != len(items) {
			t.Fatalf("parseBatch(%q, %v) = %d messages, want %d", body, ndjson, len(msgs), len(items))
		}
		for i, raw := range items {
			var s string
			if raw[0] == '"' && json.Unmarshal(raw, &s) == nil && !bytes.Equal(msgs[i].Value, []byte(s)) {
				t.Fatalf("parseBatch(%q, %v) message %d = %q, want %q", body, ndjson, i, msgs[i].Value, s)
			}
		}
	})
}

// batchItems splits an accepted batch body into its items independently of
// parseBatch: the array's elements, or the non-blank lines of NDJSON.
func batchItems(t *testing.T, body []byte, ndjson bool) []json.RawMessage {
	t.Helper()
	var items []json.RawMessage
	if !ndjson {
		if err := json.Unmarshal(body, &items); err != nil {
			t.Fatalf("parseBatch accepted %q but it is not a JSON array: %v", body, err)
		}
		return items
	}
	for _, line := range bytes.Split(body, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			items = append(items, line)
		}
	}
	return items
}

// FuzzBatchRoundTrip encodes messages the way a client would and checks
// parseBatch gives back exactly their values, in order, in both modes.
func FuzzBatchRoundTrip(f *testing.F) {
	f.Add("hello", []byte("\x00\xff bytes"), false)
	f.Add("", []byte{}, true)
	f.Add("line\nbreak \u2028 \"quoted\"", []byte("{}"), true)
	f.Add("\xff invalid utf-8", []byte(nil), false)
	f.Fuzz(func(t *testing.T, text string, raw []byte, ndjson bool) {
		want := jsonText(t, text) // what a JSON string can carry of text
		items := []any{
			text,
			map[string]any{"value": text, "ttl": 2},
			map[string]any{"value_b64": base64.StdEncoding.EncodeToString(raw)},
		}
		wantValues := [][]byte{[]byte(want), []byte(want), raw}
		msgs, err := parseBatch(encodeBatch(t, items, ndjson), ndjson)
		if err != nil {
			t.Fatalf("parseBatch of %q, %q (ndjson %v) = %v, want success", text, raw, ndjson, err)
		}
		if len(msgs) != len(wantValues) {
			t.Fatalf("parseBatch = %d messages, want %d", len(msgs), len(wantValues))
		}
		for i, w := range wantValues {
			if !bytes.Equal(msgs[i].Value, w) {
				t.Fatalf("message %d value = %q, want %q", i, msgs[i].Value, w)
			}
		}
		if got := msgs[1].TTL.Seconds(); got != 2 {
			t.Fatalf("message 1 ttl = %vs, want 2s", got)
		}
	})
}

// jsonText is s as it arrives through a JSON string (invalid UTF-8 becomes
// U+FFFD).
func jsonText(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json.Marshal(%q): %v", s, err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	return out
}

func encodeBatch(t *testing.T, items []any, ndjson bool) []byte {
	t.Helper()
	if !ndjson {
		b, err := json.Marshal(items)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		return b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			t.Fatalf("json.Encode: %v", err)
		}
	}
	return buf.Bytes()
}

// FuzzParseProtocolCmd feeds arbitrary bytes to the JSON protocol's parser:
// it never panics, every refusal is a 400 with a message, and an accepted
// add, get, take or del carries a valid queue or key (and add a value).
func FuzzParseProtocolCmd(f *testing.F) {
	for _, s := range []string{
		`{"cmd":"add","queue":"jobs","value":"hi"}`, `{"cmd":"add","queue":"jobs","value":{"a":1},"ttl":5}`,
		`{"cmd":"add","queue":"jobs"}`, `{"cmd":"add","queue":"bad name","value":1}`,
		`{"cmd":"get","queue":"jobs"}`, `{"cmd":"take","queue":""}`, `{"cmd":"del","key":"jobs:1"}`,
		`{"cmd":"del","key":"jobs:0"}`, `{"cmd":"nope"}`, `{}`, `[]`, `null`, ``, `{"cmd":1}`,
		`{"cmd":"add","queue":"q","value":null}`, `{"cmd":"add","queue":"q","value":"x","ttl":"1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cmd, err := parseProtocolCmd(raw)
		if err != nil {
			if st := httpStatus(err); st != http.StatusBadRequest || err.Error() == "" {
				t.Fatalf("parseProtocolCmd(%q) = %v (status %d), want a 400 with a message", raw, err, st)
			}
			return
		}
		switch cmd.Cmd {
		case "add", "get", "take":
			if qerr := broker.CheckQueueName(cmd.Queue); qerr != nil {
				t.Fatalf("parseProtocolCmd(%q) accepted queue %q: %v; want a valid name", raw, cmd.Queue, qerr)
			}
		case "del":
			if _, _, kerr := broker.ParseKey(cmd.Key); kerr != nil {
				t.Fatalf("parseProtocolCmd(%q) accepted key %q: %v; want a valid key", raw, cmd.Key, kerr)
			}
		case "":
			t.Fatalf("parseProtocolCmd(%q) accepted an empty cmd, want a 400", raw)
		}
		if cmd.Cmd == "add" && len(cmd.Value) == 0 {
			t.Fatalf("parseProtocolCmd(%q) accepted an add without value, want a 400", raw)
		}
	})
}
