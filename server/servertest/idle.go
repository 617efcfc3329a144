package servertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	wp "github.com/tabreduce/tabreduce/wasm/workerproto"
)

// DialIdleWorkers opens n worker sockets to the server at url (http://...),
// at most parallel at a time: each sends a HELLO of one native slot and reads
// its WELCOME, then stays idle. It returns the first error any of them met.
func DialIdleWorkers(ctx context.Context, url string, n, parallel int) ([]*websocket.Conn, error) {
	hello := wp.Encode(&wp.Hello{Protocol: wp.ProtocolVersion, Kind: wp.KindNative, Slots: 1, UserAgent: "idle-bench"})
	socket := strings.Replace(url, "http", "ws", 1) + "/api/v1/ws/worker"
	conns := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, parallel)
	var dial sync.WaitGroup
	for i := range n {
		dial.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; dial.Done() }()
			c, _, err := websocket.Dial(ctx, socket, nil)
			if err == nil {
				err = c.Write(ctx, websocket.MessageBinary, hello)
			}
			if err == nil {
				_, _, err = c.Read(ctx) // WELCOME
			}
			if err != nil {
				errs <- fmt.Errorf("worker %d: %w", i, err)
				return
			}
			conns[i] = c
		}()
	}
	dial.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
		return conns, nil
	}
}

// HeartbeatIdle sends each of conns a heartbeat of one free slot every
// interval, as an idle worker does, until ctx ends.
func HeartbeatIdle(ctx context.Context, conns []*websocket.Conn, interval time.Duration) {
	heartbeat := wp.Encode(&wp.Heartbeat{FreeSlots: 1})
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range conns {
			_ = c.Write(ctx, websocket.MessageBinary, heartbeat)
		}
	}
}
