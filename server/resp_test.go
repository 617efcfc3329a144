package server_test

import (
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/server"
)

// startRESP starts a server with the Redis protocol on a loopback port.
func startRESP(t *testing.T, cfg server.Config) *testServer {
	t.Helper()
	cfg.RedisAddr = "127.0.0.1:0"
	return startServer(t, cfg)
}

func sameReply(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// Every type of the seed's dialect, nested, comes back as it was sent, and
// HTTP shows it as its JSON form.
func TestRESPSeedTypesRoundTrip(t *testing.T) {
	s := startRESP(t, server.Config{})
	c := dialSeed(t, s.RedisAddr())
	value := []any{
		"text é\r\n", []byte{0, 1, 0xff}, int64(-42), 3.25, 1e21, nil,
		seedDict{
			{"a", []any{int64(1), []byte("b")}},
			{[]byte("k"), seedSet{"x", int64(2)}},
			{int64(7), seedDict{}},
		},
		seedSet{1.5, "s"},
		[]any{[]any{"deep", []any{nil, []any{}}}},
		seedJSON(`{"j":[true,false,{"value_b64":"not bytes in plain JSON"}]}`),
	}
	sameReply(t, "SET", c.do("SET", "typed", value), seedSimple("OK"))
	want := append(append([]any{}, value[:len(value)-1]...),
		seedDict{{"j", []any{true, false, seedDict{{"value_b64", "not bytes in plain JSON"}}}}})
	sameReply(t, "GET", c.do("GET", "typed"), want)

	r := s.get("/kv/typed").want(t, http.StatusOK)
	wantJSON := `["text é\r\n",{"value_b64":"AAH/"},-42,3.25,1e+21,null,` +
		`{"value_dict":[["a",[1,{"value_b64":"Yg=="}]],[{"value_b64":"aw=="},{"value_set":["x",2]}],[7,{}]]},` +
		`{"value_set":[1.5,"s"]},[["deep",[null,[]]]],{"j":[true,false,{"value_dict":[["value_b64","not bytes in plain JSON"]]}]}]`
	if got := string(r.Body); got != wantJSON {
		t.Errorf("GET /kv/typed =\n%s\nwant\n%s", got, wantJSON)
	}
	// What HTTP shows, PUT back, is the same value.
	s.kvPut("again", wantJSON, "application/json").want(t, http.StatusOK)
	sameReply(t, "GET of the value PUT back", c.do("GET", "again"), want)

	// Top-level kinds one by one: text stays text, bytes stay bytes.
	for _, v := range []any{"just text", []byte("just bytes"), int64(0), -0.5, seedSet{}, seedDict{}} {
		c.do("SET", "one", v)
		sameReply(t, "GET one", c.do("GET", "one"), v)
	}
	sameReply(t, "GET missing", c.do("GET", "missing"), nil)
	sameReply(t, "MGET", c.do("MGET", "one", "missing", []byte("typed")), []any{seedDict{}, nil, want})
}

// A value PUT as JSON over HTTP comes back over the wire as its types.
func TestRESPSeedReadsHTTPValues(t *testing.T) {
	s := startRESP(t, server.Config{})
	s.kvPut("cfg", `{"n":1,"f":2.0,"t":"x","b":{"value_b64":"AAE="},"l":[null,true],"s":{"value_set":[1]},"d":{"value_dict":[[1,"one"]]}}`, "application/json").
		want(t, http.StatusOK)
	s.do(http.MethodPut, "/kv/raw", bytes.NewReader([]byte{0xfe, 0}), "Content-Type", "application/octet-stream").want(t, http.StatusOK)
	c := dialSeed(t, s.RedisAddr())
	sameReply(t, "GET cfg", c.do("GET", "cfg"), seedDict{
		{"n", int64(1)}, {"f", 2.0}, {"t", "x"}, {"b", []byte{0, 1}},
		{"l", []any{nil, true}}, {"s", seedSet{int64(1)}}, {"d", seedDict{{int64(1), "one"}}},
	})
	sameReply(t, "GET raw", c.do("GET", "raw"), []byte{0xfe, 0})
	// The seed's own commands: MSET with one dict, MSETEX dict seconds,
	// SETEX key value seconds, DELETE, MDELETE.
	sameReply(t, "MSET dict", c.do("MSET", seedDict{{"m1", int64(1)}, {"m2", "two"}}), seedSimple("OK"))
	sameReply(t, "MGET", c.do("MGET", "m1", "m2"), []any{int64(1), "two"})
	sameReply(t, "MSETEX dict seconds", c.do("MSETEX", seedDict{{"e1", 1.5}}, int64(100)), int64(1))
	if ttl, ok := c.do("TTL", "e1").(int64); !ok || ttl < 99 || ttl > 100 {
		t.Errorf("TTL after MSETEX 100 = %v, want 100", ttl)
	}
	sameReply(t, "SETEX key value seconds", c.do("SETEX", "e2", "v", int64(50)), seedSimple("OK"))
	sameReply(t, "GET e2", c.do("GET", "e2"), "v")
	if ttl, ok := c.do("TTL", "e2").(int64); !ok || ttl < 49 || ttl > 50 {
		t.Errorf("TTL after SETEX e2 v 50 = %v, want 50", ttl)
	}
	sameReply(t, "DELETE", c.do("DELETE", "m1"), int64(1))
	sameReply(t, "MDELETE", c.do("MDELETE", "m1", "m2", "e1"), int64(2))
	sameReply(t, "INCRBY of a missing key", c.do("INCRBY", "f", int64(2)), int64(2))
	c.do("SET", "fl", 1.25)
	sameReply(t, "INCR a float", c.do("INCR", "fl"), 2.25)
	sameReply(t, "APPEND to a list", c.do("APPEND", "l", []any{int64(1)}), int64(1))
	sameReply(t, "APPEND to a list", c.do("APPEND", "l", "x"), int64(2))
	sameReply(t, "GET l", c.do("GET", "l"), []any{int64(1), "x"})
	sameReply(t, "ECHO", c.do("ECHO", seedSet{"a"}), seedSet{"a"})
	if e, ok := c.do("INCR", "cfg").(seedError); !ok || !strings.HasPrefix(string(e), "WRONGTYPE") {
		t.Errorf("INCR of a dict = %v, want a WRONGTYPE error", e)
	}
}
