// Package resp serves the broker's queues, the key/value space and the
// pub/sub channels over TCP in the Redis protocol: RESP2 as redis-cli,
// redis-benchmark and go-redis speak it (pipelining included), RESP3 after
// HELLO 3, and the typed dialect of the miniature Redis this project grew
// from, which adds '^' text, '@' JSON, '%' dicts and '&' sets to requests
// and replies. Every command is listed in commands.go.
package resp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/internal/accept"
	"github.com/tabreduce/tabreduce/server/kv"
	"github.com/tabreduce/tabreduce/server/pubsub"
)

// Limits bound what one client may send and hold. Zero fields take the
// defaults.
type Limits struct {
	MaxBulk     int // bytes of one string (default 8 MiB)
	MaxRequest  int // bytes of one request, all its values together (default MaxBulk + 1 MiB)
	MaxElements int // elements of one array, dict or set (default 65,536)
	MaxDepth    int // nesting of arrays, dicts and sets (default kv.MaxDepth)
	MaxInline   int // bytes of an inline command or a simple string (default 64 KiB)

	MaxClients        int // connections at once (default 10,000)
	MaxClientsPerAddr int // connections at once from one IP address (default 1,000)
	MaxSubscriptions  int // channels one connection subscribes to (default 1,000)

	IdleTimeout  time.Duration // between requests (default 10 min); none while subscribed or blocked
	ReadTimeout  time.Duration // for the rest of a request once it has begun (default 30 s)
	WriteTimeout time.Duration // for each flush of replies (default 10 s)
	MaxBlock     time.Duration // longest BLPOP wait; a timeout of 0 waits this long (default 1 h)
	// ShutdownGrace is how long Close lets commands in flight finish
	// before it closes their connections (default 2 s).
	ShutdownGrace time.Duration
}

func (l *Limits) setDefaults() {
	orDefault(&l.MaxBulk, 8<<20)
	orDefault(&l.MaxRequest, l.MaxBulk+1<<20)
	orDefault(&l.MaxElements, 1<<16)
	orDefault(&l.MaxDepth, kv.MaxDepth)
	orDefault(&l.MaxInline, 64<<10)
	orDefault(&l.MaxClients, 10_000)
	orDefault(&l.MaxClientsPerAddr, 1000)
	orDefault(&l.MaxSubscriptions, 1000)
	orDefault(&l.IdleTimeout, 10*time.Minute)
	orDefault(&l.ReadTimeout, 30*time.Second)
	orDefault(&l.WriteTimeout, 10*time.Second)
	orDefault(&l.MaxBlock, time.Hour)
	orDefault(&l.ShutdownGrace, 2*time.Second)
}

// orDefault sets a limit left at zero (or below) to its default.
func orDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Config configures a Server.
type Config struct {
	// Token is the password of AUTH; "" lets every client in.
	Token string
	// PublicRead lists key, queue and channel name patterns (path.Match
	// syntax) that read commands may use without AUTH; "*" opens every
	// read, as over HTTP.
	PublicRead []string
	// Fsync is the store's fsync policy, reported by CONFIG GET appendfsync.
	Fsync  string
	Limits Limits
	Logger *slog.Logger
}

// Deps are the parts the server works on.
type Deps struct {
	Broker *broker.Broker
	KV     *kv.Space
	Hub    *pubsub.Hub
}

// Server is a RESP listener over the broker, the key/value space and the
// hub.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	ln   net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection

	mu     sync.Mutex
	conns  map[*conn]struct{}
	byAddr map[string]int
	closed bool

	started  time.Time
	stats    stats
	closeErr error
	once     sync.Once
}

// stats are INFO's counters.
type stats struct {
	connections atomic.Int64 // accepted since start
	rejected    atomic.Int64 // refused for a limit
	commands    atomic.Int64
	errors      atomic.Int64 // error replies
}

// Listen opens the listener on addr and starts serving.
func Listen(addr string, cfg Config, deps Deps) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return Serve(ln, cfg, deps), nil
}

// Serve serves on ln until Close.
func Serve(ln net.Listener, cfg Config, deps Deps) *Server {
	cfg.Limits.setDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg: cfg, deps: deps, log: cfg.Logger, ln: ln,
		conns: map[*conn]struct{}{}, byAddr: map[string]int{}, started: time.Now(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	accept.Loop(s.ln, s.ctx.Done(), s.log, "resp accept", s.admit)
}

// admit starts serving a connection, or refuses it when a limit is full.
func (s *Server) admit(nc net.Conn) {
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	s.mu.Lock()
	var refuse string
	switch {
	case s.closed:
		refuse = "server is shutting down"
	case len(s.conns) >= s.cfg.Limits.MaxClients:
		refuse = "max number of clients reached"
	case s.byAddr[host] >= s.cfg.Limits.MaxClientsPerAddr:
		refuse = "max number of clients from one address reached"
	}
	if refuse != "" {
		s.mu.Unlock()
		s.stats.rejected.Add(1)
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write([]byte("-ERR " + refuse + "\r\n"))
		nc.Close()
		return
	}
	c := newConn(s, nc, host, s.stats.connections.Add(1))
	s.conns[c] = struct{}{}
	s.byAddr[host]++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.forget(c)
		c.serve()
	}()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.byAddr[c.host]--; s.byAddr[c.host] <= 0 {
		delete(s.byAddr, c.host)
	}
	s.mu.Unlock()
}

// clients returns how many connections are open.
func (s *Server) clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting, lets the commands in flight finish (up to
// ShutdownGrace), ends blocked and subscribed clients, closes every
// connection and waits for their goroutines.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = err
		}
		s.cancel()
		for _, c := range conns {
			c.interrupt() // a connection waiting for a request ends at once
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
			return
		case <-time.After(s.cfg.Limits.ShutdownGrace):
		}
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	})
	return s.closeErr
}
