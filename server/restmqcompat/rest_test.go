package restmqcompat

import (
	"crypto/md5"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

// TestRESTScript replays RestMQ's examples/test_rest.sh, curl call by curl
// call, and checks every answer byte for byte. RestMQ's JSON has spaces
// after its separators (Python's json.dumps); ours is compact, which no
// client depends on.
func TestRESTScript(t *testing.T) {
	s := start(t, server.Config{})
	steps := []struct {
		method, path, body string
		status             int
		want               string
	}{
		// QUEUE DATA
		{"POST", "/", "queue=test&value=foobar", 200, "test:1\r\n"},
		{"POST", "/queue", `body={"cmd":"get", "queue":"test"}`, 200, `{"queue":"test","value":"foobar","key":"test:1","count":1}` + "\n"},
		{"POST", "/q/test", "value=foobar", 200, "test:2\r\n"},
		// A hard get's count is 0, as RestMQ counts: only soft gets count.
		{"GET", "/q/test", "", 200, `{"key":"test:1","value":"foobar","count":0}` + "\r\n"},
		// QUEUE CONTROL
		{"GET", "/control/test", "", 200, `{"queue":"test","status":{"queue":"test","status":1}}` + "\r\n"},
		{"POST", "/control/test", "status=stop", 200, `{"stat":{"queue":"test","status":0}}` + "\r\n"},
		{"GET", "/control/test", "", 200, `{"queue":"test","status":{"queue":"test","status":0}}` + "\r\n"},
		{"POST", "/control/test", "status=start", 200, `{"stat":{"queue":"test","status":1}}` + "\r\n"},
		{"GET", "/control/test", "", 200, `{"queue":"test","status":{"queue":"test","status":1}}` + "\r\n"},
		{"DELETE", "/q/test", "", 200, `{"queue":"test","status":1}` + "\r\n"},
		// QUEUE POLICY
		{"GET", "/p/test", "", 200, `{"queue":"test","value":"broadcast"}` + "\r\n"},
		{"POST", "/p/test", "policy=roundrobin", 200, "OK\r\n"},
		{"GET", "/p/test", "", 200, `{"queue":"test","value":"roundrobin"}` + "\r\n"},
		{"POST", "/p/test", "policy=broadcast", 200, "OK\r\n"},
		{"GET", "/p/test", "", 200, `{"queue":"test","value":"broadcast"}` + "\r\n"},
		// After the purge the ids go on, as RestMQ's INCR does.
		{"POST", "/q/test", "value=foobar", 200, "test:3\r\n"},
	}
	for _, st := range steps {
		ctype := ""
		if st.body != "" {
			ctype = formType // curl -d
		}
		s.call(st.method, st.path, ctype, st.body).want(t, st.method+" "+st.path+" "+st.body, st.status, st.want)
	}
}

// TestJSONProtocol makes each of docs/README.Protocol's commands as form
// field body (curl -d body=…, the help page's form) and checks dispatch.py's
// answers, its 200 {"error": …} answers included.
func TestJSONProtocol(t *testing.T) {
	s := start(t, server.Config{})
	proto := func(cmd string) reply { return s.call("POST", "/queue", formType, form("body", cmd)) }
	proto(`{"cmd":"add", "queue":"test", "value":"oi"}`).want(t, "add", 200, `{"queue":"test","value":"oi","key":"test:1"}`+"\n")
	proto(`{"cmd":"get", "queue":"test"}`).want(t, "get", 200, `{"queue":"test","value":"oi","key":"test:1","count":1}`+"\n")
	proto(`{"cmd":"get", "queue":"test"}`).want(t, "get again", 200, `{"queue":"test","value":"oi","key":"test:1","count":2}`+"\n")
	proto(`{"cmd":"del", "queue":"test", "key":"test:1"}`).want(t, "del", 200, `{"queue":"test","deleted":true,"key":"test:1"}`+"\n")
	proto(`{"cmd":"del", "queue":"test", "key":"test:1"}`).want(t, "del of a missing key", 200, `{"queue":"test","deleted":false,"key":"test:1"}`+"\n")
	proto(`{"cmd":"take", "queue":"test"}`).want(t, "take when empty", 200, `{"error":"empty queue"}`+"\n")
	proto(`{"cmd":"get", "queue":"test"}`).want(t, "get when empty", 200, `{"error":"empty queue"}`+"\n")
	proto(`{"cmd":"add", "queue":"genesis", "value":"abacab"}`).want(t, "add", 200, `{"queue":"genesis","value":"abacab","key":"genesis:1"}`+"\n")
	proto(`{"cmd":"take", "queue":"genesis"}`).want(t, "take", 200, `{"queue":"genesis","value":"abacab","key":"genesis:1"}`+"\n")
	proto(`{"cmd":"explode", "queue":"test"}`).want(t, "unknown command", 200, `{"error":"null resultset"}`+"\n")
	// The message field may be msg instead of body (web.py reads both).
	s.call("POST", "/queue", formType, form("msg", `{"cmd":"add","queue":"m","value":"via msg"}`)).
		want(t, "add via msg", 200, `{"queue":"m","value":"via msg","key":"m:1"}`+"\n")
	// Malformed JSON is a 400 in RestMQ too; ours says why in JSON.
	if r := proto(`{"cmd":`); r.status != http.StatusBadRequest || !strings.Contains(r.body, "malformed JSON") {
		t.Errorf("malformed command: want a 400 that says so, got %d %q", r.status, r.body)
	}
}

// TestRedirects: GET / and GET /queue redirect where RestMQ's do, and both
// pages are there.
func TestRedirects(t *testing.T) {
	s := start(t, server.Config{})
	for path, loc := range map[string]string{"/": "/static/index.html", "/queue": "/static/help.html"} {
		r := s.call("GET", path, "", "")
		if r.status != http.StatusFound || r.header.Get("Location") != loc {
			t.Errorf("GET %s: want 302 to %s, got %d %q", path, loc, r.status, r.header.Get("Location"))
		}
		page := s.call("GET", loc, "", "")
		if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: want an HTML page, got %d %q", loc, page.status, page.header.Get("Content-Type"))
		}
	}
	// The help page's form posts field body to /queue, as RestMQ's does.
	if help := s.call("GET", "/static/help.html", "", "").body; !strings.Contains(help, `action="/queue"`) || !strings.Contains(help, `name="body"`) {
		t.Errorf("help page: want a form posting body to /queue, got %q", help)
	}
	if index := s.call("GET", "/static/index.html", "", "").body; !strings.Contains(index, `href="/dashboard"`) {
		t.Errorf("landing page: want a link to the dashboard")
	}
}

// TestBigMessage follows tests/bigmessage.py: urllib.urlencode of queue and
// a JSON value POSTed to /, the key read back with rstrip(), then a hard
// get whose value decodes to the same content (md5).
func TestBigMessage(t *testing.T) {
	s := start(t, server.Config{})
	content := strings.Repeat("All work and no play makes Jack a dull boy. ", 40000) // 1.7 MB
	msg, _ := json.Marshal(map[string]any{"filename": "big.txt", "len": len(content), "content": content})
	r := s.call("POST", "/", formType, form("queue", "bigmessages_1", "value", string(msg)))
	key := strings.TrimRight(r.body, " \r\n")
	if r.status != 200 || key != "bigmessages_1:1" {
		t.Fatalf("enqueue: want the key, got %d %q", r.status, r.body)
	}
	got := s.call("GET", "/q/bigmessages_1", "", "")
	var dataDic struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal([]byte(got.body), &dataDic); err != nil {
		t.Fatalf("dequeue: %v", err)
	}
	var dd2 struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal([]byte(dataDic.Value), &dd2); err != nil {
		t.Fatalf("dequeued value: %v", err)
	}
	if md5.Sum([]byte(dd2.Content)) != md5.Sum([]byte(content)) {
		t.Errorf("dequeued content differs: %d bytes, want %d", len(dd2.Content), len(content))
	}
}

// TestRawBodies: curl --data-binary @photo.jpg sends a form content type;
// a body that is not a form with value or msg is the message, byte for byte.
// So are the requests library's data='…' (a string, not a dict) and a plain
// text body.
func TestRawBodies(t *testing.T) {
	s := start(t, server.Config{})
	jpeg := "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01%zz&=;\x00\xff\xd9"
	bodies := []struct{ name, ctype, body string }{
		{"binary with a form type", formType, jpeg},
		{"text that is no form field", formType, "hello all"},
		{"a form without value or msg", formType, "ttl=60"},
		{"text/plain", "text/plain", "plain"},
		{"no content type", "", "none"},
	}
	for i, b := range bodies {
		want := "images:" + string(rune('1'+i)) + "\r\n"
		s.call("POST", "/q/images", b.ctype, b.body).want(t, "push "+b.name, 200, want)
	}
	for _, b := range bodies {
		m, err := s.Broker().Take(t.Context(), "images")
		if err != nil || string(m.Value) != b.body {
			t.Errorf("%s: want the body %q as the message, got %q (%v)", b.name, b.body, m.Value, err)
		}
	}
	// A value that is not UTF-8 comes back in base64, said so.
	s.call("POST", "/q/bin", formType, jpeg)
	var m struct{ Value, Encoding string }
	if err := json.Unmarshal([]byte(s.call("GET", "/q/bin", "", "").body), &m); err != nil || m.Encoding != "base64" {
		t.Errorf("binary hard get: want base64, got %+v (%v)", m, err)
	}
}

// TestProducers: the other producers' exact calls. examples/test_request.py
// (requests.post with a dict), restmq_websockets' producer.py (twisted
// getPage with an explicit form header), the map/reduce example's map.py
// and the grinder load test (urllib, POST / with queue and value), and ab
// with tests/post.txt.
func TestProducers(t *testing.T) {
	s := start(t, server.Config{})
	s.call("POST", "/q/test", formType, "value=el+requesto").want(t, "test_request.py", 200, "test:1\r\n")
	s.call("POST", "/q/twitter", formType, form("value", `{"text":"fail whale","user":{"screen_name":"x"}}`)).want(t, "producer.py", 200, "twitter:1\r\n")
	s.call("POST", "/", formType, form("queue", "reducer", "value", `{"count": 302, "filename": "files/bookfrag-aa"}`)).want(t, "map.py", 200, "reducer:1\r\n")
	s.call("POST", "/", formType, "queue=reducer&value=%7B%22count%22%3A+302%2C+%22filename%22%3A+%22files%2Fbookfrag-aa%22%7D").want(t, "ab -p post.txt", 200, "reducer:2\r\n")
	for _, key := range []string{"reducer:1", "reducer:2"} {
		var m struct{ Key, Value string }
		if err := json.Unmarshal([]byte(s.call("GET", "/q/reducer", "", "").body), &m); err != nil || m.Key != key || m.Value != `{"count": 302, "filename": "files/bookfrag-aa"}` {
			t.Errorf("ab -n … /q/reducer: want %s with its JSON value, got %+v (%v)", key, m, err)
		}
	}
	// An empty queue's hard get is a 204 with no body; / answers 404.
	s.call("GET", "/q/reducer", "", "").want(t, "GET /q/reducer when empty", 204, "")
	if r := s.call("GET", "/?queue=reducer", "", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /?queue=reducer when empty: want 404, got %d", r.status)
	}
}

// TestStatsAndPages: /stats/ (RestMQ's route needs the slash) and /stats,
// /stats/{queue} with len 0 for a queue that does not exist, /control/,
// /q/ and /j/{queue}.
func TestStatsAndPages(t *testing.T) {
	s := start(t, server.Config{})
	for range 3 {
		s.call("POST", "/q/jobs", formType, "value=j")
	}
	s.call("POST", "/control/jobs", formType, "status=stop")
	for _, path := range []string{"/stats/", "/stats"} {
		var all struct {
			Queues map[string]map[string]any `json:"queues"`
			Count  *int                      `json:"count"`
		}
		if err := json.Unmarshal([]byte(s.call("GET", path, "", "").body), &all); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		q := all.Queues["jobs"]
		if all.Count == nil || *all.Count != 1 || q["name"] != "jobs" || q["len"] != 3.0 || q["status"] != "paused" || q["policy"] != "broadcast" {
			t.Errorf(`GET %s: want {"queues":{"jobs":{"name":"jobs","len":3,"status":"paused","policy":"broadcast",…}},"count":1}, got %+v`, path, all)
		}
	}
	for q, n := range map[string]float64{"jobs": 3, "never": 0} {
		var one map[string]any
		r := s.call("GET", "/stats/"+q, "", "")
		if err := json.Unmarshal([]byte(r.body), &one); err != nil || r.status != 200 || one["queue"] != q || one["len"] != n {
			t.Errorf(`GET /stats/%s: want 200 {"queue":%q,"len":%v,…}, got %d %s`, q, q, n, r.status, r.body)
		}
	}
	s.call("GET", "/control/", "", "").want(t, "GET /control/", 200, `{"queues":{"jobs":{"queue":"jobs","status":0}},"count":1}`+"\r\n")
	if page := s.call("GET", "/q/", "", "").body; !strings.Contains(page, `<a href="/q/jobs">/q/jobs</a>`) {
		t.Errorf("GET /q/: want RestMQ's list of links, got %q", page)
	}
	page := s.call("GET", "/j/jobs", "", "").body
	if !strings.Contains(page, "queue name: jobs") || !strings.Contains(page, "<li>jobs:3</li>") || strings.Index(page, "jobs:3") > strings.Index(page, "jobs:1") {
		t.Errorf("GET /j/jobs: want the counts and the latest keys, newest first, got %q", page)
	}
}

// TestQueuesNamedLikeOurSockets: the worker and dashboard sockets live under
// /api/v1, so queues named worker and dashboard are ordinary queues on every
// RestMQ route.
func TestQueuesNamedLikeOurSockets(t *testing.T) {
	s := start(t, server.Config{})
	for _, q := range []string{"worker", "dashboard", "pubsub"} {
		s.call("POST", "/q/"+q, formType, "value=v").want(t, "push to "+q, 200, q+":1\r\n")
		s.call("GET", "/q/"+q, "", "").want(t, "take from "+q, 200, `{"key":"`+q+`:1","value":"v","count":0}`+"\r\n")
		ws := s.dialWS(t, "/ws/"+q, nil)
		s.call("POST", "/q/"+q, formType, "value=live")
		if got := ws.read(t); got != `{"key":"`+q+`:2","value":"live","count":1}` {
			t.Errorf("/ws/%s: want the queue's message, got %q", q, got)
		}
	}
}

// TestPercentEncodedNames: a name reaches the broker decoded exactly once,
// whichever of its bytes the client percent-encoded; one that decodes to a
// name with "/" is refused, not taken literally.
func TestPercentEncodedNames(t *testing.T) {
	s := start(t, server.Config{})
	for _, path := range []string{"/q/a-b", "/q/a%2Db", "/q/%61%2D%62"} {
		s.call("POST", path, formType, "value=v")
	}
	if r := s.call("GET", "/stats/a-b", "", ""); !strings.Contains(r.body, `"len":3`) {
		t.Errorf("three pushes to a-b, however encoded: got %s", r.body)
	}
	s.call("GET", "/q/a%2Db", "", "").want(t, "hard get via an escaped name", 200, `{"key":"a-b:1","value":"v","count":0}`+"\r\n")
	for _, path := range []string{"/q/a%2Fb", "/c/a%2Fb", "/p/x%2F..%2Fy"} {
		if r := s.call("GET", path, "", ""); r.status != http.StatusBadRequest {
			t.Errorf("GET %s: want 400 for a name with /, got %d %s", path, r.status, r.body)
		}
	}
}

// TestUTF8Names: RestMQ accepts any UTF-8 queue name; here any that is a
// valid path segment (no "/", no control characters, at most 128 bytes),
// percent-encoded in URLs or sent as raw UTF-8, is one queue.
func TestUTF8Names(t *testing.T) {
	s := start(t, server.Config{})
	s.call("POST", "/q/caf%C3%A9", formType, "value=1").want(t, "push to café (escaped)", 200, "café:1\r\n")
	// Go's client escapes the path; curl sends the UTF-8 bytes as they are.
	c, _ := s.dialRaw("POST /q/café HTTP/1.1\r\nHost: localhost\r\nContent-Type: " + formType + "\r\nContent-Length: 7\r\nConnection: close\r\n\r\nvalue=2")
	if body, err := io.ReadAll(c.r); err != nil || string(body) != "café:2\r\n" {
		t.Errorf("push to café (raw UTF-8 on the wire): got %q (%v)", body, err)
	}
	s.call("POST", "/", formType, form("queue", "café", "value", "3")).want(t, "POST / queue=café", 200, "café:3\r\n")
	s.call("POST", "/queue", formType, form("body", `{"cmd":"add","queue":"café","value":"4"}`)).
		want(t, "JSON protocol add to café", 200, `{"queue":"café","value":"4","key":"café:4"}`+"\n")
	s.call("GET", "/q/caf%C3%A9", "", "").want(t, "hard get from café", 200, `{"key":"café:1","value":"1","count":0}`+"\r\n")
	s.call("POST", "/queue", formType, form("body", `{"cmd":"del","key":"café:2"}`)).
		want(t, "del café:2", 200, `{"queue":"café","deleted":true,"key":"café:2"}`+"\n")
	spaced := "a queue: with spaces"
	s.call("POST", "/q/"+url.PathEscape(spaced), formType, "value=v").want(t, "push to a name with spaces", 200, spaced+":1\r\n")
	long := strings.Repeat("é", 64) // 128 bytes
	s.call("POST", "/q/"+url.PathEscape(long), formType, "value=v").want(t, "push to a 128-byte name", 200, long+":1\r\n")
	for _, bad := range []string{url.PathEscape(long + "x"), "a%00b", "a%0Ab", "a%2Fb", "%FF"} {
		if r := s.call("POST", "/q/"+bad, formType, "value=v"); r.status != http.StatusBadRequest {
			t.Errorf("POST /q/%s: want 400, got %d %s", bad, r.status, r.body)
		}
	}
	ws := s.dialWS(t, "/ws/"+url.PathEscape("canal ☃"), nil)
	s.call("POST", "/q/"+url.PathEscape("canal ☃"), formType, "value=snow")
	if got := ws.read(t); got != `{"key":"canal ☃:1","value":"snow","count":1}` {
		t.Errorf("/ws on a UTF-8 name: got %q", got)
	}
}
