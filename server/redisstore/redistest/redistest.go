// Package redistest starts real redis-server processes for tests: a
// server on a free loopback port with its files in a temporary directory,
// or a Redis Cluster of several such servers. It needs Debian's
// redis-server and redis-tools (make redis installs them).
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a server.
type Options struct {
	// Fsync is appendfsync: "always", "everysec" (default) or "no"; the
	// append-only file is always on.
	Fsync string
	// Cluster starts the server with cluster mode on.
	Cluster bool
}

// Server is one redis-server process.
type Server struct {
	Dir  string
	Port int
	opts Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is a store URL for the server with a key prefix.
func (s *Server) URL(prefix string) string { return "redis://" + s.Addr() + "/0?prefix=" + prefix }

// Start starts a server in a new temporary directory under dir ("" for
// the system's).
func Start(dir string, opts Options) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server is not installed (make redis installs it)")
	}
	d, err := os.MkdirTemp(dir, "redis-")
	if err != nil {
		return nil, err
	}
	if opts.Fsync == "" {
		opts.Fsync = "everysec"
	}
	var last error
	for range 5 {
		port, err := freePort(opts.Cluster)
		if err != nil {
			return nil, err
		}
		s := &Server{Dir: d, Port: port, opts: opts}
		if last = s.start(); last == nil {
			return s, nil
		}
	}
	return nil, last
}

// freePort finds a loopback port that is free now (and, for a cluster
// node, whose bus port, 10,000 above, is free too).
func freePort(cluster bool) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !cluster {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		if b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			b.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port pair for a cluster node")
}

func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--appendonly", "yes", "--appendfsync", s.opts.Fsync, "--save", "",
		"--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
		"--loglevel", "warning",
	}
	if s.opts.Cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.Dir, "nodes.conf"),
			"--cluster-node-timeout", "2000")
	}
	cmd := exec.Command("redis-server", args...)
	s.log = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited: %s", s.Port, strings.TrimSpace(s.log.String()))
		default:
		}
		if out, err := s.CLI("PING"); err == nil && strings.TrimSpace(out) == "PONG" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("redis-server on port %d did not answer", s.Port)
}

// CLI runs redis-cli against the server and returns its output.
func (s *Server) CLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	full := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.Port)}, args...)
	out, err := exec.CommandContext(ctx, "redis-cli", full...).CombinedOutput()
	return string(out), err
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.signal(syscall.SIGKILL)
}

// Stop stops the server cleanly (SIGTERM: Redis flushes its append-only
// file and exits).
func (s *Server) Stop() {
	s.signal(syscall.SIGTERM)
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
}

// Restart stops the server (cleanly, or with SIGKILL if crash) and starts
// it again on the same port and files.
func (s *Server) Restart(crash bool) error {
	if crash {
		s.Kill()
	} else {
		s.Stop()
	}
	var err error
	for range 50 { // the port may take a moment to be free again
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Close kills the server and removes its files.
func (s *Server) Close() {
	s.Kill()
	os.RemoveAll(s.Dir)
}

// Cluster is a Redis Cluster of masters with no replicas.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n cluster-mode servers and joins them into one
// cluster (redis-cli --cluster create), waiting until every node says the
// cluster is ok.
func StartCluster(dir string, n int) (*Cluster, error) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return nil, errors.New("redis-cli is not installed (make redis installs it)")
	}
	c := &Cluster{}
	for range n {
		s, err := Start(dir, Options{Cluster: true})
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := c.Nodes[0].CLI(args...); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.Nodes {
		for {
			out, err := s.CLI("CLUSTER", "INFO")
			if err == nil && strings.Contains(out, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				return nil, fmt.Errorf("cluster never became ok: %s", out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c, nil
}

// URL is a store URL naming every node, with a key prefix.
func (c *Cluster) URL(prefix string) string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	return "redis+cluster://" + strings.Join(addrs, ",") + "?prefix=" + prefix
}

// Close kills every node and removes their files.
func (c *Cluster) Close() {
	for _, s := range c.Nodes {
		s.Close()
	}
}
