package resp_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/resp"
)

// A command that panics costs its client the connection, not the server.
func TestPanicInACommand(t *testing.T) {
	defer resp.AddTestCommand("TESTPANIC", func() { panic("boom") })()
	s := serve(t, resp.Limits{})
	talk := func(req string) string {
		nc, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(waitFor))
		io.WriteString(nc, req)
		out, _ := io.ReadAll(nc)
		return string(out)
	}
	// Replies still buffered go with the half-written one: the connection
	// ends anyway.
	if got := talk("ECHO lost\r\nTESTPANIC\r\nPING\r\n"); got != "-ERR internal: internal error\r\n" {
		t.Errorf("a panicking command answered %q, want an error and the end", got)
	}
	if got := talk("PING\r\nQUIT\r\n"); got != "+PONG\r\n+OK\r\n" {
		t.Errorf("the next connection got %q, want it served", got)
	}
}
