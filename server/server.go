// Package server wires the broker, its store, pub/sub and the HTTP API into
// one running server. cmd/tabreduce's serve command and the end-to-end tests
// both start it through Start.
package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server/blob"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/buntstore"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/server/httpapi"
	"github.com/tabreduce/tabreduce/server/kv"
	"github.com/tabreduce/tabreduce/server/pubsub"
	"github.com/tabreduce/tabreduce/server/redisstore"
	"github.com/tabreduce/tabreduce/server/resp"
	"github.com/tabreduce/tabreduce/static"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/worker"
	"github.com/tabreduce/tabreduce/wasm/workerproto"
)

// Config is the server's configuration; zero fields take the defaults.
type Config struct {
	Addr string // listen address (default 127.0.0.1:8080)
	// RedisAddr is the address of the Redis-protocol listener (package
	// resp); "" leaves it off. The token and loopback rules of Addr apply.
	RedisAddr string
	DataDir   string // job inputs, modules and the embedded store (default ./data)
	// Store is the broker's store. Start takes it over and closes it with
	// the server. Nil opens StoreURL.
	Store broker.Store
	// StoreURL chooses the store when Store is nil (OpenStore): "" or
	// "buntdb:" is the embedded buntdb file in DataDir.
	StoreURL string
	// Name is this server's name among the servers that share a store
	// (the dashboard and pub/sub presence say which server a worker or a
	// member is on); default: Addr, or a random name when Addr's port is 0.
	Name        string
	Fsync       string // the embedded store's fsync: always, everysec (default) or never
	MaxBody     int64  // bytes per request body (default 8 MiB)
	MaxInput    int64  // bytes of a job submission (default 4 GiB)
	Token       string // bearer token for writes and admin routes
	Insecure    bool   // allow a non-loopback address without a token
	JSONP       bool   // answer ?callback= on JSON GETs
	PublicRead  []string
	MaxAttempts int // failed leases before dead-lettering (default 5)
	// MaxTaskBytes bounds one task's input or result (default 64 MiB); a
	// reduce partition larger than this is split over several tasks.
	MaxTaskBytes int
	// SpillBytes: a run larger than this is kept in a file, not in the
	// store (default engine.DefaultSpillBytes).
	SpillBytes int
	// AllowOrigins lists the web origins whose pages may open our WebSockets
	// and live streams cross-origin (httpapi.Config.AllowOrigins).
	AllowOrigins []string
	// AllowHosts lists the host names, besides IP addresses and localhost,
	// that requests may name in Host (httpapi.Config.AllowHosts): enforced
	// without a token, or whenever it is set.
	AllowHosts []string
	// TrustedProxies are the addresses or CIDR networks of reverse proxies
	// whose X-Forwarded-For names the client; from anywhere else it is
	// ignored.
	TrustedProxies []string
	// ReadHeaderTimeout bounds the wait for a request's headers (default
	// 10 s), BodyIdleTimeout each wait for more of its body and
	// WriteTimeout each write of its response (httpapi's defaults).
	ReadHeaderTimeout time.Duration
	BodyIdleTimeout   time.Duration
	WriteTimeout      time.Duration
	// MaxAnonWorkers and MaxAnonWorkersPerAddr cap the worker sockets open
	// without the token, in all and from one address (httpapi's defaults).
	MaxAnonWorkers        int
	MaxAnonWorkersPerAddr int
	// CompileTimeout bounds an uploaded module's start when it is checked,
	// and MaxCompiles the modules compiled at once (runner.Config's; zero:
	// its defaults).
	CompileTimeout time.Duration
	MaxCompiles    int
	// MaxWorkerSlots bounds the slots believed of a worker without the
	// token, and SameNetworkReplicas lets replicas of one network agree
	// (engine.Config's; zero: its defaults).
	MaxWorkerSlots      int
	SameNetworkReplicas bool
	// JobRetention is how long a finished job is kept (default 7 days;
	// negative: until it is deleted).
	JobRetention time.Duration
	// HeartbeatInterval is how often workers are told to send a heartbeat
	// (default 5 s, engine.Config.HeartbeatInterval); three missed drop one.
	HeartbeatInterval time.Duration
	// LocalWorkers runs an in-process worker with this many slots, so the
	// server finishes jobs with no other worker connected (0: none).
	LocalWorkers int
	// WasmCache is wazero's compilation cache directory (default
	// os.UserCacheDir()/tabreduce/wazero): it makes compiling a module
	// after the first time cheap, across restarts.
	WasmCache string
	// Builtins are the built-in jobs' modules by name; nil means the example
	// jobs compiled into this binary (package jobs), with the compressed
	// forms the build made of them.
	Builtins map[string][]byte
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// on shutdown (default 10 s).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger

	builtinEncodings map[string]map[string][]byte
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Name == "" {
		c.Name = c.Addr
		if _, port, _ := net.SplitHostPort(c.Addr); port == "0" {
			c.Name = "server-" + randomHex(4)
		}
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 8 << 20
	}
	if c.MaxInput <= 0 {
		c.MaxInput = httpapi.DefaultMaxInput
	}
	if c.WasmCache == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			c.WasmCache = filepath.Join(dir, "tabreduce", "wazero")
		}
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Builtins == nil {
		var missing []string
		c.Builtins, missing = jobs.Modules()
		c.builtinEncodings = jobs.Encodings()
		for _, name := range missing {
			c.Logger.Warn("built-in job is not built into this binary (run make jobs)", "job", name)
		}
	}
}

// idleTimeout bounds a kept-alive connection's wait for its next request.
const idleTimeout = 120 * time.Second

// DefaultReadHeaderTimeout is Config.ReadHeaderTimeout's default.
const DefaultReadHeaderTimeout = 10 * time.Second

// Validate refuses settings that would be unsafe or cannot work.
func (c Config) Validate() error {
	if _, err := buntstore.ParseFsync(c.Fsync); err != nil {
		return err
	}
	if _, err := ParseNetworks(c.TrustedProxies); err != nil {
		return fmt.Errorf("trusted proxies: %w", err)
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", c.Addr, err)
	}
	if !isLoopback(host) && c.Token == "" && !c.Insecure {
		return fmt.Errorf("addr %s is reachable from other machines: set --token (or TABREDUCE_TOKEN), or pass --insecure to run without one", c.Addr)
	}
	if c.RedisAddr != "" {
		host, _, err := net.SplitHostPort(c.RedisAddr)
		if err != nil {
			return fmt.Errorf("redis addr %q: %w", c.RedisAddr, err)
		}
		if !isLoopback(host) && c.Token == "" && !c.Insecure {
			return fmt.Errorf("redis addr %s is reachable from other machines: set --token (or TABREDUCE_TOKEN), or pass --insecure to run without one", c.RedisAddr)
		}
	}
	return nil
}

// ParseNetworks parses addresses ("10.0.0.1", "::1") and CIDR networks
// ("10.0.0.0/8"); an address is a network of itself alone.
func ParseNetworks(list []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, v := range list {
		if _, n, err := net.ParseCIDR(v); err == nil {
			out = append(out, n)
			continue
		}
		ip := net.ParseIP(v)
		if ip == nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR network", v)
		}
		bits := 128
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 32
		}
		out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
	}
	return out, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a running tabreduce server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	store  broker.Store
	lock   *buntstore.DirLock
	broker *broker.Broker
	hub    *pubsub.Hub
	relay  *redisstore.Relay // nil unless the store is Redis
	engine *engine.Engine
	runner *runner.Runner
	http   *http.Server
	fast   *httpapi.FastPath // serves http's listener
	ln     net.Listener
	resp   *resp.Server // nil unless RedisAddr is set
	done   chan error
	// sessions counts the worker sessions httpapi runs past their
	// handlers; Close waits for them once the engine has ended them.
	sessions *sync.WaitGroup

	closeOnce   sync.Once
	closeErr    error
	stopWorkers context.CancelFunc
	workersDone chan struct{}

	newMu    sync.Mutex
	newConns map[net.Conn]bool // connections that have not sent a request yet
}

// trackNew keeps the set of connections that have not sent a request.
func (s *Server) trackNew(c net.Conn, st http.ConnState) {
	s.newMu.Lock()
	defer s.newMu.Unlock()
	if st == http.StateNew {
		if s.newConns == nil {
			s.newConns = map[net.Conn]bool{}
		}
		s.newConns[c] = true
	} else {
		delete(s.newConns, c)
	}
}

// closeNew closes the connections that have not sent a request.
func (s *Server) closeNew() {
	s.newMu.Lock()
	defer s.newMu.Unlock()
	for c := range s.newConns {
		c.Close()
	}
}

// Start opens the store, starts the broker and listens. It returns once the
// server accepts connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store := cfg.Store
	if store == nil {
		var err error
		if store, err = OpenStore(cfg.StoreURL, StoreOptions{DataDir: cfg.DataDir, Fsync: cfg.Fsync, Logger: cfg.Logger}); err != nil {
			return nil, err
		}
	}
	// Job inputs and modules live in the data directory whatever the store.
	lock, err := buntstore.LockDir(cfg.DataDir, "tabreduce.lock")
	if err != nil {
		store.Close()
		return nil, err
	}
	b, err := broker.New(ctx, store, broker.Config{MaxAttempts: cfg.MaxAttempts, MaxMessage: int(cfg.MaxBody)}, cfg.Logger)
	if err != nil {
		store.Close()
		lock.Release()
		return nil, err
	}
	hub := pubsub.New(pubsub.Config{Server: cfg.Name})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(httpapi.NewQueueCollector(b))
	run, err := runner.New(ctx, runner.Config{CacheDir: cfg.WasmCache, Logger: cfg.Logger, CompileTimeout: cfg.CompileTimeout, MaxCompiles: cfg.MaxCompiles})
	if err != nil {
		b.Close()
		store.Close()
		lock.Release()
		return nil, err
	}
	// On Redis, the servers sharing the store are one service: jobs'
	// files go to the shared blob store and jobs are coordinated by lease.
	var shared blob.Store
	if rs, ok := store.(*redisstore.Store); ok {
		shared = rs.Blobs()
	}
	eng, err := engine.New(ctx, engine.Config{
		DataDir: cfg.DataDir, MaxInput: cfg.MaxInput, MaxTaskBytes: cfg.MaxTaskBytes, SpillBytes: cfg.SpillBytes, Builtins: cfg.Builtins, JobRetention: cfg.JobRetention,
		BuiltinEncodings: cfg.builtinEncodings, Observer: httpapi.NewEngineMetrics(reg), Shared: shared, Server: cfg.Name, Logger: cfg.Logger,
		MaxWorkerSlots: cfg.MaxWorkerSlots, SameNetworkReplicas: cfg.SameNetworkReplicas,
		HeartbeatInterval: cfg.HeartbeatInterval,
	}, b.Internal(), run)
	if err != nil {
		run.Close(ctx)
		b.Close()
		store.Close()
		lock.Release()
		return nil, err
	}
	proxies, _ := ParseNetworks(cfg.TrustedProxies) // checked by Validate
	stopping := make(chan struct{})
	reg.MustRegister(httpapi.NewEngineCollector(eng))
	sessions := &sync.WaitGroup{} // worker sessions, ended by the engine's Close
	e, fast := httpapi.NewWithFastPath(httpapi.Config{
		MaxBody: cfg.MaxBody, MaxInput: cfg.MaxInput, Token: cfg.Token, PublicRead: cfg.PublicRead, JSONP: cfg.JSONP,
		AllowOrigins: cfg.AllowOrigins, AllowHosts: cfg.AllowHosts, TrustedProxies: proxies, MaxWorkerFrame: eng.MaxFrame(),
		WriteTimeout: cfg.WriteTimeout, BodyIdleTimeout: cfg.BodyIdleTimeout,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: idleTimeout,
		MaxAnonWorkers: cfg.MaxAnonWorkers, MaxAnonWorkersPerAddr: cfg.MaxAnonWorkersPerAddr,
	}, httpapi.Deps{Broker: b, KV: store, Hub: hub, Engine: eng, Log: cfg.Logger, Landing: static.Landing(), Done: stopping, Sessions: sessions}, reg, reg)
	s := &Server{cfg: cfg, log: cfg.Logger, store: store, lock: lock, broker: b, hub: hub, engine: eng, runner: run, sessions: sessions, fast: fast, done: make(chan error, 1)}
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	// Live consumers hold their requests open: end them when shutdown begins
	// so Shutdown does not wait for them.
	s.http.RegisterOnShutdown(func() { close(stopping); eng.Close(); b.Close(); s.closeHub() })
	// Shutdown waits up to 5 s for a connection that never sent a request;
	// such a connection has nothing in flight, so close it at once.
	s.http.ConnState = s.trackNew
	s.http.RegisterOnShutdown(s.closeNew)
	s.ln, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		eng.Close()
		run.Close(ctx)
		b.Close()
		store.Close()
		lock.Release()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if rs, ok := store.(*redisstore.Store); ok {
		s.relay = rs.NewRelay(hub) // channels and presence span the servers on it
	}
	if cfg.RedisAddr != "" {
		s.resp, err = resp.Listen(cfg.RedisAddr, resp.Config{
			Token: cfg.Token, PublicRead: cfg.PublicRead, Fsync: cfg.Fsync,
			Limits: resp.Limits{MaxBulk: int(cfg.MaxBody)}, Logger: cfg.Logger,
		}, resp.Deps{Broker: b, KV: kv.New(store), Hub: hub})
		if err != nil {
			s.ln.Close()
			s.closeHub()
			eng.Close()
			run.Close(ctx)
			b.Close()
			store.Close()
			lock.Release()
			return nil, err
		}
		s.log.Info("redis protocol listening", "addr", s.resp.Addr())
	}
	// RestMQ's push and hard get are answered on the fast path; every
	// other request, and its connection from then on, goes to net/http.
	ln := fast.Listen(s.ln)
	go func() { s.done <- s.http.Serve(ln) }()
	if cfg.LocalWorkers > 0 {
		s.startLocalWorker(cfg.LocalWorkers)
	}
	s.log.Info("listening", "addr", s.Addr(), "data", cfg.DataDir, "store", storeName(cfg), "token", cfg.Token != "")
	return s, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// RedisAddr is the address of the Redis-protocol listener, "" when off.
func (s *Server) RedisAddr() string {
	if s.resp == nil {
		return ""
	}
	return s.resp.Addr()
}

// Broker returns the running broker.
func (s *Server) Broker() *broker.Broker { return s.broker }

// Echo returns the HTTP handler (for tests that need to look at routes).
func (s *Server) Echo() *echo.Echo { return s.http.Handler.(*echo.Echo) }

// Close shuts the server down gracefully: it stops accepting, lets in-flight
// requests finish (up to ShutdownTimeout), closes live consumers with a close
// code, and closes the store.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if s.stopWorkers != nil {
			s.stopWorkers()
			<-s.workersDone
		}
		var err error
		if s.resp != nil {
			err = s.resp.Close()
		}
		herr := s.http.Shutdown(ctx)
		if errors.Is(herr, context.DeadlineExceeded) {
			herr = s.http.Close()
		}
		_ = s.fast.Wait(ctx) // past ctx it has closed the fast connections left
		err = cmp.Or(err, herr)
		s.engine.Close()
		s.sessions.Wait()
		s.broker.Close()
		s.closeHub()
		if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		if rerr := s.runner.Close(context.Background()); rerr != nil && err == nil {
			err = rerr
		}
		if cerr := s.store.Close(); cerr != nil && err == nil {
			err = cerr
		}
		s.lock.Release()
		s.closeErr = err
		s.log.Info("stopped")
	})
	return s.closeErr
}

// closeHub withdraws this server's pub/sub members from the other servers
// and closes the hub.
func (s *Server) closeHub() {
	if s.relay != nil {
		s.relay.Close()
	}
	s.hub.Close()
}

// Name is the server's name among the servers sharing its store.
func (s *Server) Name() string { return s.cfg.Name }

// Engine returns the map/reduce coordinator.
func (s *Server) Engine() *engine.Engine { return s.engine }

// localHandshakeTimeout bounds the in-process worker's dial and HELLO; a
// variable so that tests can shorten it below a task's length.
var localHandshakeTimeout = worker.DefaultHandshakeTimeout

// startLocalWorker runs the worker loop in-process over a pipe, sharing the
// engine's runner: built-in modules run on it without a fetch. Each
// session's server side runs on the workers' own context, which lives as
// long as the server, not on the context of the dial that opened it (that
// one ends with the handshake's time-out).
func (s *Server) startLocalWorker(slots int) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWorkers, s.workersDone = cancel, make(chan struct{})
	var sessions sync.WaitGroup
	dial := func(context.Context) (worker.Transport, error) {
		serverEnd, workerEnd := worker.Pipe()
		sessions.Go(func() {
			if err := s.engine.ServeWorker(ctx, serverEnd, engine.Peer{RemoteAddr: "in-process", UserAgent: "tabreduce (in-process)", Trusted: true}); err != nil {
				s.log.Debug("local worker session ended", "err", err)
			}
		})
		return workerEnd, nil
	}
	go func() {
		defer close(s.workersDone)
		err := worker.Run(ctx, worker.Options{
			Dial: dial, Runner: s.runner, Modules: engineModules{s.engine}, Slots: slots,
			Kind: workerproto.KindLocal, Name: "local", Logger: s.log, HandshakeTimeout: localHandshakeTimeout,
		})
		if err != nil {
			s.log.Error("local worker", "err", err)
		}
		sessions.Wait()
	}()
}

// engineModules prepares modules for the in-process worker: the engine
// loads them into the runner they share.
type engineModules struct{ e *engine.Engine }

func (m engineModules) Prepare(ctx context.Context, _ *runner.Runner, sha string) error {
	return m.e.LoadModule(ctx, sha)
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
