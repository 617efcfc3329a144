package redisstore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/pubsub"
	"github.com/tabreduce/tabreduce/server/redisstore"
)

// relayed is one server's hub with a relay to the others.
func relayed(t *testing.T, url, server string, ttl time.Duration) (*pubsub.Hub, *redisstore.Relay) {
	t.Helper()
	s := open(t, url)
	s.SetPresenceTTL(ttl)
	hub := pubsub.New(pubsub.Config{Server: server})
	r := s.NewRelay(hub)
	t.Cleanup(func() {
		r.Close()
		hub.Close()
	})
	return hub, r
}

func subscribe(t *testing.T, h *pubsub.Hub, ch string) *pubsub.Subscriber {
	t.Helper()
	sub, err := h.Subscribe(ch, pubsub.Member{RemoteAddr: "127.0.0.1:1", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	next(t, sub) // its own join
	return sub
}

// next is the subscriber's next event, within 5 s.
func next(t *testing.T, sub *pubsub.Subscriber) *pubsub.Event {
	t.Helper()
	select {
	case ev := <-sub.Events():
		return ev
	case <-sub.Done():
		t.Fatalf("subscriber dropped: %v", sub.Err())
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return nil
}

func memberIDs(t *testing.T, h *pubsub.Hub, ch string) []string {
	t.Helper()
	ms, err := h.Members(ch)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.Server+"/"+m.ID)
	}
	return ids
}

func TestRelaySpansServers(t *testing.T) {
	url := redisServer(t).URL(newPrefix())
	a, _ := relayed(t, url, "A", time.Minute)
	b, _ := relayed(t, url, "B", time.Minute)
	onB := subscribe(t, b, "room")
	// B's join goes out a moment after its Subscribe returns; wait for it
	// before A joins, so that A does not see it after its own.
	deadline := time.Now().Add(5 * time.Second)
	for len(memberIDs(t, a, "room")) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	onA := subscribe(t, a, "room")
	if ev := next(t, onB); ev.Type != pubsub.EventJoin || ev.Member.ID != onA.ID() || ev.Member.Server != "A" {
		t.Errorf("B saw %+v, want A's join", ev)
	}
	want := []string{"B/" + onB.ID(), "A/" + onA.ID()}
	for _, h := range []*pubsub.Hub{a, b} {
		if got := memberIDs(t, h, "room"); !slices.Equal(got, want) {
			t.Errorf("members = %v, want %v (every server's, in join order)", got, want)
		}
	}
	// A message published anywhere reaches every member once, the
	// publisher's own included; one published on a server with no members
	// of the channel reaches the others too.
	if _, err := onA.Publish([]byte("from A"), false); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*pubsub.Subscriber{onA, onB} {
		if ev := next(t, sub); ev.Type != pubsub.EventMessage || string(ev.Data) != "from A" || ev.From != onA.ID() {
			t.Errorf("got %+v, want A's message", ev)
		}
	}
	c, _ := relayed(t, url, "C", time.Minute)
	if _, err := c.Publish("room", pubsub.FromHTTP, []byte{0xff, 0}, true); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*pubsub.Subscriber{onA, onB} {
		if ev := next(t, sub); string(ev.Data) != "\xff\x00" || !ev.Binary {
			t.Errorf("got %+v, want C's binary message", ev)
		}
	}
	onB.Close()
	if ev := next(t, onA); ev.Type != pubsub.EventLeave || ev.Member.ID != onB.ID() {
		t.Errorf("A saw %+v, want B's leave", ev)
	}
}

// A server that dies stops renewing its members: the others drop them
// and announce their leaves.
func TestRelayDropsADeadServersMembers(t *testing.T) {
	url := redisServer(t).URL(newPrefix())
	a, _ := relayed(t, url, "A", 600*time.Millisecond)
	b, rb := relayed(t, url, "B", 600*time.Millisecond)
	onA := subscribe(t, a, "room")
	onB := subscribe(t, b, "room")
	next(t, onA) // B's join
	rb.Crash()
	ev := next(t, onA)
	if ev.Type != pubsub.EventLeave || ev.Member.ID != onB.ID() {
		t.Fatalf("A saw %+v, want the dead server's member leave", ev)
	}
	if got := memberIDs(t, a, "room"); !slices.Equal(got, []string{"A/" + onA.ID()}) {
		t.Errorf("members after B died = %v", got)
	}
}
