package pubsub

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
)

// wait bounds every wait for a signal, so a bug fails the test instead of
// hanging it.
const wait = 5 * time.Second

// next returns s's next event, failing if none arrives.
func next(t *testing.T, s *Subscriber) *Event {
	t.Helper()
	select {
	case ev := <-s.Events():
		return ev
	case <-s.Done():
		t.Fatalf("subscriber %s dropped (%v) while waiting for an event", s.ID(), s.Err())
	case <-time.After(wait):
		t.Fatalf("subscriber %s: no event", s.ID())
	}
	return nil
}

// expect reads s's next event and checks its type and, for joins and
// leaves, its member.
func expect(t *testing.T, s *Subscriber, typ EventType, member string) *Event {
	t.Helper()
	ev := next(t, s)
	if ev.Type != typ {
		t.Fatalf("subscriber %s: event %s, want %s (%s)", s.ID(), ev.Type, typ, ev.Frame())
	}
	if typ != EventMessage && ev.Member.ID != member {
		t.Fatalf("subscriber %s: %s of %s, want %s", s.ID(), typ, ev.Member.ID, member)
	}
	return ev
}

// subscribe subscribes to name, failing the test on error, and closes the
// subscriber at the end of the test.
func subscribe(t *testing.T, h *Hub, name, agent string) *Subscriber {
	t.Helper()
	s, err := h.Subscribe(name, Member{RemoteAddr: "127.0.0.1:1", UserAgent: agent})
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", name, err)
	}
	t.Cleanup(s.Close)
	return s
}

// newHub returns a Hub with cfg that closes at the end of the test.
func newHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	h := New(cfg)
	t.Cleanup(h.Close)
	return h
}

func TestJoinsReachEveryMemberIncludingTheJoiner(t *testing.T) {
	h := newHub(t, Config{})
	a := subscribe(t, h, "room", "agent-a")
	ev := expect(t, a, EventJoin, a.ID())
	if ev.Member.UserAgent != "agent-a" || ev.Member.RemoteAddr != "127.0.0.1:1" || ev.Member.Joined.IsZero() {
		t.Errorf("join member = %+v", ev.Member)
	}
	if ev.Channel != "room" {
		t.Errorf("join channel = %q", ev.Channel)
	}
	b := subscribe(t, h, "room", "agent-b")
	expect(t, b, EventJoin, b.ID())
	expect(t, a, EventJoin, b.ID())
	if a.ID() == b.ID() {
		t.Errorf("two subscribers share id %s", a.ID())
	}
}

func TestPublishReachesEveryMemberIncludingTheSender(t *testing.T) {
	h := newHub(t, Config{})
	a := subscribe(t, h, "room", "a")
	b := subscribe(t, h, "room", "b")
	other := subscribe(t, h, "elsewhere", "o")
	expect(t, a, EventJoin, a.ID())
	expect(t, a, EventJoin, b.ID())
	expect(t, b, EventJoin, b.ID())
	expect(t, other, EventJoin, other.ID())

	n, err := a.Publish([]byte("from a"), false)
	if err != nil || n != 2 {
		t.Fatalf("Publish = %d, %v; want 2 deliveries", n, err)
	}
	n, err = h.Publish("room", FromHTTP, []byte("from http"), false)
	if err != nil || n != 2 {
		t.Fatalf("Publish = %d, %v; want 2 deliveries", n, err)
	}
	for _, s := range []*Subscriber{a, b} {
		for _, want := range []struct{ from, data string }{{a.ID(), "from a"}, {FromHTTP, "from http"}} {
			ev := expect(t, s, EventMessage, "")
			if ev.From != want.from || string(ev.Data) != want.data {
				t.Errorf("subscriber %s got %s, want %q from %s", s.ID(), ev.Frame(), want.data, want.from)
			}
		}
	}
	select {
	case ev := <-other.Events():
		t.Errorf("subscriber of another channel got %s", ev.Frame())
	default:
	}
	if n, err := h.Publish("nobody", FromHTTP, []byte("x"), false); err != nil || n != 0 {
		t.Errorf("Publish to an empty channel = %d, %v; want 0, nil", n, err)
	}
	if st := h.Stats(); st.Published != 3 || st.Channels != 2 || st.Subscribers != 3 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestLeaveIsAnnouncedAndPresenceForgetsTheMember(t *testing.T) {
	h := newHub(t, Config{})
	a := subscribe(t, h, "room", "a")
	b := subscribe(t, h, "room", "b")
	members, err := h.Members("room")
	if err != nil || len(members) != 2 || members[0].ID != a.ID() || members[1].ID != b.ID() {
		t.Fatalf("Members = %+v, %v; want a then b", members, err)
	}
	expect(t, a, EventJoin, a.ID())
	expect(t, a, EventJoin, b.ID())

	b.Close()
	b.Close() // a second Close is a no-op
	ev := expect(t, a, EventLeave, b.ID())
	if ev.Member.UserAgent != "b" {
		t.Errorf("leave member = %+v", ev.Member)
	}
	if b.Err() != nil {
		t.Errorf("Err after own Close = %v, want nil", b.Err())
	}
	if members, _ := h.Members("room"); len(members) != 1 || members[0].ID != a.ID() {
		t.Errorf("Members after leave = %+v", members)
	}

	a.Close()
	members, err = h.Members("room")
	if err != nil || members == nil || len(members) != 0 {
		t.Errorf("Members of an empty channel = %#v, %v; want [], nil", members, err)
	}
	if st := h.Stats(); st.Channels != 0 || st.Subscribers != 0 {
		t.Errorf("Stats after everyone left = %+v", st)
	}
}

func TestChannelNamesAreChecked(t *testing.T) {
	h := newHub(t, Config{})
	for _, name := range []string{"", "a\x00b", "a/b", "a\tb", "\xff", strings.Repeat("x", 129)} {
		t.Run(fmt.Sprintf("%.10q", name), func(t *testing.T) {
			if _, err := h.Subscribe(name, Member{}); !errors.Is(err, broker.ErrInvalid) {
				t.Errorf("Subscribe: %v, want ErrInvalid", err)
			}
			if _, err := h.Publish(name, FromHTTP, nil, false); !errors.Is(err, broker.ErrInvalid) {
				t.Errorf("Publish: %v, want ErrInvalid", err)
			}
			if _, err := h.Members(name); !errors.Is(err, broker.ErrInvalid) {
				t.Errorf("Members: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestMessagesAreBounded(t *testing.T) {
	h := newHub(t, Config{MaxMessage: 8})
	s := subscribe(t, h, "room", "")
	expect(t, s, EventJoin, s.ID())
	if _, err := s.Publish([]byte("12345678"), false); err != nil {
		t.Errorf("Publish at the limit: %v", err)
	}
	expect(t, s, EventMessage, "")
	if _, err := s.Publish([]byte("123456789"), false); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Publish over the limit: %v, want ErrInvalid", err)
	}
}

func TestChannelFull(t *testing.T) {
	h := newHub(t, Config{MaxSubscribers: 2})
	subscribe(t, h, "room", "")
	b := subscribe(t, h, "room", "")
	if _, err := h.Subscribe("room", Member{}); !errors.Is(err, ErrChannelFull) {
		t.Fatalf("third Subscribe: %v, want ErrChannelFull", err)
	}
	subscribe(t, h, "other", "") // the limit is per channel
	b.Close()
	subscribe(t, h, "room", "") // room was freed
}

func TestSlowSubscriberIsDroppedWithoutBlocking(t *testing.T) {
	h := newHub(t, Config{Buffer: 3})
	slow := subscribe(t, h, "room", "slow") // never reads: its join fills 1 of 3
	fast := subscribe(t, h, "room", "fast") // slow: 2 of 3
	expect(t, fast, EventJoin, fast.ID())
	for i := range 2 {
		if n, err := h.Publish("room", FromHTTP, []byte("x"), false); err != nil || n != 2-i {
			t.Fatalf("Publish %d = %d, %v; want %d", i, n, err, 2-i)
		}
		expect(t, fast, EventMessage, "")
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber still a member")
	}
	if !errors.Is(slow.Err(), ErrSlow) {
		t.Errorf("Err = %v, want ErrSlow", slow.Err())
	}
	expect(t, fast, EventLeave, slow.ID())
	if members, _ := h.Members("room"); len(members) != 1 || members[0].ID != fast.ID() {
		t.Errorf("Members = %+v, want only the fast one", members)
	}
	if st := h.Stats(); st.Dropped != 1 || st.Subscribers != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestCloseDropsEveryoneAndWaitsForOwners(t *testing.T) {
	h := New(Config{})
	a, _ := h.Subscribe("room", Member{})
	b, _ := h.Subscribe("other", Member{})
	expect(t, a, EventJoin, a.ID())

	closed := make(chan struct{})
	go func() {
		h.Close()
		close(closed)
	}()
	for _, s := range []*Subscriber{a, b} {
		select {
		case <-s.Done():
		case <-time.After(wait):
			t.Fatal("Close did not drop a subscriber")
		}
		if !errors.Is(s.Err(), ErrClosed) || !errors.Is(s.Err(), broker.ErrClosed) {
			t.Errorf("Err = %v, want ErrClosed", s.Err())
		}
	}
	select {
	case <-a.Events():
		t.Error("Close announced a leave")
	case <-closed:
		t.Fatal("Close returned before the subscribers were closed")
	default:
	}
	a.Close()
	b.Close()
	select {
	case <-closed:
	case <-time.After(wait):
		t.Fatal("Close did not return after every subscriber closed")
	}
	if _, err := h.Subscribe("room", Member{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	if _, err := h.Publish("room", FromHTTP, nil, false); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	h.Close() // idempotent
}

// TestConcurrentUse churns subscribers and publishers on a few channels, for
// the race detector, and checks the Hub ends empty and consistent.
func TestConcurrentUse(t *testing.T) {
	h := newHub(t, Config{Buffer: 8})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := fmt.Sprintf("c%d", i%3)
			for range 50 {
				s, err := h.Subscribe(name, Member{})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Publish([]byte("hi"), false); err != nil {
					t.Error(err)
				}
				h.Members(name)
				// Drain without blocking; undrained subscribers get dropped.
				for len(s.Events()) > 0 {
					<-s.Events()
				}
				s.Close()
			}
		})
	}
	wg.Wait()
	st := h.Stats()
	if st.Channels != 0 || st.Subscribers != 0 || st.Published != 16*50 {
		t.Errorf("Stats after churn = %+v", st)
	}
}
