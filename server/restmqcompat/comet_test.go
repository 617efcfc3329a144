package restmqcompat

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

// TestCometSystemMonitor follows contrib/system-monitor: qfeeder.py posts
// jobs (urllib, POST / with queue and a JSON value) and qconsumer.py reads
// /c/monitor with twisted's downloadPage, an HTTP/1.0 client whose write()
// gets whatever each read returns. It splits that on "\r\n" and decodes
// every line as JSON and its value as JSON again: lines must end "\r\n",
// or two jobs read together are lost.
func TestCometSystemMonitor(t *testing.T) {
	s := start(t, server.Config{})
	jobs := []string{`{"cpu": 12}`, `{"mem": 80}`, `{"load": 1.5}`}
	for _, j := range jobs[:2] { // a backlog, written at once
		s.call("POST", "/", formType, form("queue", "monitor", "value", j))
	}
	c, h := s.dialRaw("GET /c/monitor HTTP/1.0\r\nHost: localhost:8888\r\nUser-Agent: Twisted PageGetter")
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("COMET Content-Type: want text/plain as RestMQ's, got %q", ct)
	}
	s.waitConsumers("monitor", 1)
	s.call("POST", "/", formType, form("queue", "monitor", "value", jobs[2]))
	var got []string
	buf := make([]byte, 64<<10)
	var pending string
	for len(got) < len(jobs) {
		n, err := c.r.Read(buf)
		if err != nil {
			t.Fatalf("after %d jobs: %v", len(got), err)
		}
		// qconsumer.py's CometClient.write, on what it was handed.
		content := pending + string(buf[:n])
		lines := strings.Split(content, "\r\n")
		pending = lines[len(lines)-1] // only a read that ends mid-line leaves some
		for _, line := range lines[:len(lines)-1] {
			var packet struct{ Key, Value string }
			if err := json.Unmarshal([]byte(line), &packet); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			var task map[string]any
			if err := json.Unmarshal([]byte(packet.Value), &task); err != nil {
				t.Fatalf("job %s value %q: %v", packet.Key, packet.Value, err)
			}
			got = append(got, packet.Value)
		}
	}
	if strings.Join(got, " ") != strings.Join(jobs, " ") {
		t.Errorf("processed jobs %q, want %q", got, jobs)
	}
}

// TestCometChunks follows examples/test_comet_em.rb: em-http's stream
// callback gets each HTTP chunk and parses it as one JSON document, so a
// backlog must be written one message per chunk.
func TestCometChunks(t *testing.T) {
	s := start(t, server.Config{})
	for _, v := range []string{"a", "b", "c"} {
		s.call("POST", "/q/test", formType, "value="+v)
	}
	c, h := s.dialRaw("GET /c/test HTTP/1.1\r\nHost: localhost:8888\r\nConnection: close")
	if te := h.Get("Transfer-Encoding"); te != "chunked" {
		t.Fatalf("want a chunked stream, got Transfer-Encoding %q", te)
	}
	for i, v := range []string{"a", "b", "c"} {
		chunk := c.chunk(t)
		var d map[string]any
		if err := json.Unmarshal([]byte(chunk), &d); err != nil || d["value"] != v || d["key"] != "test:"+string(rune('1'+i)) {
			t.Errorf("chunk %d: want one JSON document with value %q, got %q (%v)", i, v, chunk, err)
		}
		if !strings.HasSuffix(chunk, "}\r\n") {
			t.Errorf("chunk %d: want it to end with \\r\\n, got %q", i, chunk)
		}
	}
}

// TestCometBroadcast follows examples/test_comet_curl.py: ten COMET
// consumers of one queue each get every message, since RestMQ's default
// policy is broadcast.
func TestCometBroadcast(t *testing.T) {
	s := start(t, server.Config{})
	const consumers, messages = 10, 5
	conns := make([]*rawConn, consumers)
	for i := range conns {
		conns[i], _ = s.dialRaw("GET /c/test HTTP/1.1\r\nHost: localhost:8888\r\nConnection: close")
	}
	s.waitConsumers("test", consumers)
	for i := range messages {
		s.call("POST", "/q/test", formType, "value=m"+string(rune('0'+i)))
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for j := range messages {
				chunk := c.chunk(t)
				if want := `"value":"m` + string(rune('0'+j)) + `"`; !strings.Contains(chunk, want) {
					t.Errorf("consumer %d, message %d: want %s, got %q", i, j, want, chunk)
				}
			}
		})
	}
	wg.Wait()
}

// TestCometJSONP: with --jsonp, ?callback= wraps each line as RestMQ's
// CustomHandler does: "callback(...);\r\n".
func TestCometJSONP(t *testing.T) {
	s := start(t, server.Config{JSONP: true})
	s.call("POST", "/q/test", formType, "value=x")
	c, _ := s.dialRaw("GET /c/test?callback=got HTTP/1.1\r\nHost: localhost:8888\r\nConnection: close")
	if chunk := c.chunk(t); chunk != `got({"key":"test:1","value":"x","count":1});`+"\r\n" {
		t.Errorf("JSONP line: got %q", chunk)
	}
	s.call("POST", "/q/hg", formType, "value=z")
	s.call("GET", "/q/hg?callback=got", "", "").want(t, "JSONP hard get", 200, `got({"key":"hg:1","value":"z","count":0});`+"\r\n")
}

// TestServerSentEvents: an EventSource (Accept: text/event-stream) on a
// queue's COMET route gets each message as an event whose id is its key.
func TestServerSentEvents(t *testing.T) {
	s := start(t, server.Config{})
	s.call("POST", "/q/test", formType, "value=x")
	c, h := s.dialRaw("GET /c/test HTTP/1.1\r\nHost: localhost:8888\r\nAccept: text/event-stream\r\nConnection: close")
	if ct := h.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("want Content-Type text/event-stream, got %q", ct)
	}
	if chunk := c.chunk(t); chunk != "id: test:1\ndata: {\"key\":\"test:1\",\"value\":\"x\",\"count\":1}\n\n" {
		t.Errorf("event: got %q", chunk)
	}
}

// TestStreamOrigins: a page of another origin reads a COMET or SSE stream
// only when --allow-origin lists it (with CORS headers that let it), and is
// refused otherwise, before it can take a message.
func TestStreamOrigins(t *testing.T) {
	for _, path := range []string{"/c/test", "/pub/test"} {
		closed := start(t, server.Config{})
		closed.call("POST", "/q/test", formType, "value=x")
		if r := closed.call("GET", path, "", "", "Origin", "http://evil.example"); r.status != http.StatusForbidden {
			t.Errorf("GET %s from another origin: want 403, got %d", path, r.status)
		}
		if n, _ := closed.Broker().Stats(t.Context(), "test"); n.Length != 1 {
			t.Errorf("GET %s refused: want the message still there, got %+v", path, n)
		}
		open := start(t, server.Config{AllowOrigins: []string{"http://localhost:8000"}})
		_, h := open.dialRaw("GET " + path + " HTTP/1.1\r\nHost: localhost:8888\r\nOrigin: http://localhost:8000\r\nAccept: text/event-stream\r\nConnection: close")
		if h.Get("Access-Control-Allow-Origin") != "http://localhost:8000" || h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("GET %s from an allowed origin: want CORS headers naming it, got %q", path, h)
		}
	}
}
