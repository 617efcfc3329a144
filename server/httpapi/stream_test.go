package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// TestStreamCutFailsTheWriteInProgress cuts a live stream's write between
// the arming of its deadline and the bytes reaching the connection, as a
// shutdown may: the write must fail, or the stream would acknowledge a
// message that it cannot know reached its client. boundWrites' own arming
// used to undo the cut, and its flush swallowed the connection's error.
func TestStreamCutFailsTheWriteInProgress(t *testing.T) {
	got := make(chan error, 1)
	e := echo.New()
	e.Use(boundWrites(time.Minute))
	a := &API{}
	e.GET("/stream", func(c echo.Context) error {
		cw, stop := a.startStream(c, false, time.Minute, make(chan struct{}))
		defer stop()
		if !cw.begin() {
			got <- errStreamCut
			return nil
		}
		cw.cut()
		err := cw.send([]byte("a message\r\n"))
		cw.end()
		got <- err
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	select {
	case err := <-got:
		if err == nil {
			t.Fatalf("a write cut in progress reported success; the client read %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not finish")
	}
}
