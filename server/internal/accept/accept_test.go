package accept

import (
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestLoop serves a dialed connection and returns once the listener closes.
func TestLoop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan net.Conn, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		Loop(ln, make(chan struct{}), slog.New(slog.DiscardHandler), "accept", func(c net.Conn) { served <- c })
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-served:
		sc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the dialed connection was not served")
	}
	ln.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("Loop did not return when its listener closed")
	}
}
