package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/server/internal/accept"
)

// The fast path answers RestMQ's push (POST /q/{queue}) and hard get (GET
// /q/{queue}) on the connection's own goroutine, without net/http's and
// Echo's per-request machinery: one read, one store call and one write a
// request. It takes only the plainest form of those requests — HTTP/1.1,
// a name of unreserved characters, no query, a body that fits its buffer,
// and only headers it knows (Host, Content-Length, Content-Type,
// Authorization, Accept, Accept-Encoding, User-Agent, Connection:
// keep-alive, X-Request-Id) — and only when every check Echo's routes make
// passes (Host, token or public read, body size). At the first request it
// does not take, the connection, with every byte read from it, goes to
// net/http for good (FastPath.Listen's Accept), which answers that request
// and everything after it, refusals included. A browser's request always
// goes there: Origin, Sec-Fetch-* and Cookie are not headers it knows.

// Bounds of the fast path.
const (
	// FastBuffer is a fast connection's read buffer: a request (headers
	// and body) that does not fit goes to net/http.
	FastBuffer = 4 << 10
	// fastPooledBody bounds the scratch a connection keeps for the body
	// of its next hard get's answer.
	fastPooledBody = 16 << 10
	// fastPipeline bounds the answers to pipelined requests written in one
	// write.
	fastPipeline = 32
	// maxFastName is the longest queue name the fast path takes (the
	// queue-name rule's limit).
	maxFastName = 128
)

// FastPath serves the fast path's connections (see above).
type FastPath struct {
	a       *API
	deny    string // the Content-Security-Policy of every /q answer
	handoff chan net.Conn
	done    chan struct{} // closed by Close
	once    sync.Once
	inner   net.Listener
	wg      sync.WaitGroup // the accept loop and every fast connection

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[*fastConn]struct{}

	pushOK, takeOK, takeEmpty prometheus.Observer
	// answered counts the requests the fast path answered, handed the
	// connections it gave net/http.
	answered, handed prometheus.Counter
}

func newFastPath(a *API, reg prometheus.Registerer) *FastPath {
	f := &FastPath{a: a, deny: pagePolicy(nil, "'none'"), handoff: make(chan net.Conn), done: make(chan struct{}),
		conns: map[*fastConn]struct{}{},
		answered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tabreduce_http_fast_requests_total",
			Help: "Requests (RestMQ's push and hard get) answered on the fast path.",
		}),
		handed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tabreduce_http_fast_handoffs_total",
			Help: "Connections the fast path gave net/http at a request it does not take.",
		}),
	}
	reg.MustRegister(f.answered, f.handed)
	f.pushOK = a.latency.WithLabelValues(http.MethodPost, fastRoute, "200")
	f.takeOK = a.latency.WithLabelValues(http.MethodGet, fastRoute, "200")
	f.takeEmpty = a.latency.WithLabelValues(http.MethodGet, fastRoute, "204")
	return f
}

// fastRoute is the Echo route the fast path answers for (its metrics label).
const fastRoute = "/q/:queue"

// Listen starts accepting on ln and returns the listener to serve the Echo
// instance from: its Accept gives the connections the fast path hands to
// net/http. Closing it (http.Server.Shutdown does) closes ln and every fast
// connection waiting for a request; Wait waits for the rest.
func (f *FastPath) Listen(ln net.Listener) net.Listener {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inner = ln
	if f.closing.Load() {
		ln.Close()
	} else {
		f.wg.Add(1)
		go f.acceptLoop()
	}
	return fastListener{f}
}

// Wait waits until every fast connection has ended, at most until ctx is
// done; then it closes those left and waits for them.
func (f *FastPath) Wait(ctx context.Context) error {
	f.close()
	ended := make(chan struct{})
	go func() { f.wg.Wait(); close(ended) }()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	for fc := range f.conns {
		fc.c.Close()
	}
	f.mu.Unlock()
	<-ended
	return ctx.Err()
}

// close stops accepting and closes every fast connection that is waiting
// for a request; those answering one close once they have.
func (f *FastPath) close() {
	f.once.Do(func() {
		f.mu.Lock()
		f.closing.Store(true)
		close(f.done)
		if f.inner != nil {
			f.inner.Close()
		}
		for fc := range f.conns {
			if fc.state.CompareAndSwap(connIdle, connClosed) {
				fc.c.Close()
			}
		}
		f.mu.Unlock()
	})
}

// fastListener is the listener net/http serves from.
type fastListener struct{ f *FastPath }

func (l fastListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.f.handoff:
		return c, nil
	case <-l.f.done:
		return nil, net.ErrClosed
	}
}

func (l fastListener) Close() error   { l.f.close(); return nil }
func (l fastListener) Addr() net.Addr { return l.f.inner.Addr() }

// acceptLoop accepts until the listener closes.
func (f *FastPath) acceptLoop() {
	defer f.wg.Done()
	accept.Loop(f.inner, f.done, f.a.log, "accept failed; retrying", f.admit)
}

// admit starts serving a connection, unless the fast path is closing.
func (f *FastPath) admit(c net.Conn) {
	fc := &fastConn{f: f, c: c}
	f.mu.Lock()
	if f.closing.Load() {
		f.mu.Unlock()
		c.Close()
		return
	}
	f.conns[fc] = struct{}{}
	f.wg.Add(1)
	f.mu.Unlock()
	go fc.serve()
}

// A fast connection's states: waiting for a request (Close may close it),
// reading or answering one, closed by Close.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// fastConn is one connection on the fast path.
type fastConn struct {
	f     *FastPath
	c     net.Conn
	state atomic.Int32
	buf   []byte // buf[r:w] is read and not yet consumed
	r, w  int
	out   []byte // answers not yet written
	body  []byte // scratch for a hard get's answer body, copied into out
	// readBy and writeBy are the deadlines last armed (zero: none yet).
	readBy, writeBy time.Time
}

func (fc *fastConn) serve() {
	f := fc.f
	defer f.wg.Done()
	handed := false
	defer func() {
		if p := recover(); p != nil {
			f.a.log.Error("fast path panicked", "panic", p, "remote", fc.c.RemoteAddr().String())
		}
		f.mu.Lock()
		delete(f.conns, fc)
		f.mu.Unlock()
		if !handed {
			fc.c.Close()
		}
		if b := fc.buf; b != nil {
			fastBuffers.Put(&b)
		}
	}()
	fc.buf = *fastBuffers.Get().(*[]byte)
	cfg := f.a.cfg
	first := true
	pending := 0 // answers in out
	for {
		if fc.r == fc.w {
			if !fc.flush() || !fc.idle() {
				return
			}
			fc.r, fc.w = 0, 0
			wait, slack := cfg.IdleTimeout, cfg.IdleTimeout/64
			if first { // net/http bounds a new connection's first wait by the header timeout
				wait, slack = cfg.ReadHeaderTimeout, 0
			}
			if !fc.read(time.Now().Add(wait), slack) || !fc.state.CompareAndSwap(connIdle, connActive) {
				return
			}
		}
		first = false
		start := time.Now()
		var req fastRequest
		for {
			var v fastVerdict
			req, v = fc.f.parse(fc.buf[fc.r:fc.w])
			if v == fastTake {
				break
			}
			if v == fastNeedMore && fc.w-fc.r < len(fc.buf) {
				if !fc.flush() { // a pipelining client may wait for them
					return
				}
				pending = 0
				by := start.Add(cfg.ReadHeaderTimeout)
				if req.headerDone {
					by = time.Now().Add(cfg.BodyIdleTimeout)
				}
				if fc.r > 0 { // make room at the end
					fc.w = copy(fc.buf, fc.buf[fc.r:fc.w])
					fc.r = 0
				}
				if !fc.read(by, 0) {
					return
				}
				continue
			}
			handed = fc.handOff()
			return
		}
		fc.answer(&req)
		f.answered.Inc()
		fc.r += req.size
		if pending++; fc.r == fc.w || len(fc.out) > 16<<10 || pending >= fastPipeline {
			if !fc.flush() {
				return
			}
			pending = 0
		}
		if f.closing.Load() {
			fc.flush()
			return
		}
	}
}

// idle marks the connection as waiting for a request; false when the
// server is closing (the connection is then to be closed).
func (fc *fastConn) idle() bool {
	fc.state.CompareAndSwap(connActive, connIdle)
	// Close marks closing before it looks for idle connections: it sees
	// this one idle, or this one sees closing.
	return !fc.f.closing.Load()
}

// read reads more into buf[w:], with the read deadline at by or up to
// slack earlier: a deadline armed less than slack before is kept, which
// spares a timer reset a request and never waits longer than asked.
func (fc *fastConn) read(by time.Time, slack time.Duration) bool {
	if fc.readBy.IsZero() || by.Before(fc.readBy) || by.Sub(fc.readBy) > slack {
		if fc.c.SetReadDeadline(by) != nil {
			return false
		}
		fc.readBy = by
	}
	n, err := fc.c.Read(fc.buf[fc.w:])
	fc.w += n
	return n > 0 || err == nil
}

// flush writes the answers not yet written, each write bounded by
// WriteTimeout as on net/http's connections.
func (fc *fastConn) flush() bool {
	if len(fc.out) == 0 {
		return true
	}
	timeout := fc.f.a.cfg.WriteTimeout
	by := time.Now().Add(timeout)
	if fc.writeBy.IsZero() || by.Sub(fc.writeBy) > timeout/64 { // as read's slack
		if fc.c.SetWriteDeadline(by) != nil {
			return false
		}
		fc.writeBy = by
	}
	_, err := fc.c.Write(fc.out)
	fc.out = fc.out[:0]
	return err == nil
}

// handOff gives the connection, with the bytes read and not consumed, to
// net/http; false when the server is closing (the connection is then to be
// closed).
func (fc *fastConn) handOff() bool {
	if !fc.flush() {
		return false
	}
	if !fc.writeBy.IsZero() {
		fc.c.SetWriteDeadline(time.Time{})
	}
	hc := &handedConn{Conn: fc.c, pre: bytes.Clone(fc.buf[fc.r:fc.w])}
	b := fc.buf
	fastBuffers.Put(&b)
	fc.buf, fc.out = nil, nil
	fc.f.handed.Inc() // before net/http may serve a request that reads it
	select {
	case fc.f.handoff <- hc:
		return true
	case <-fc.f.done:
		return false
	}
}

// fastBuffers holds the read buffers of connections that have ended or
// gone to net/http (every worker socket passes through the fast path).
var fastBuffers = sync.Pool{New: func() any { b := make([]byte, FastBuffer); return &b }}

// handedConn is a connection handed to net/http: its reads give first the
// bytes the fast path had read.
type handedConn struct {
	net.Conn
	pre []byte
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		if c.pre = c.pre[n:]; len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close the connection after an error
// answer, as it does on its own TCP connections.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps net/http's sendfile path for files.
func (c *handedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

// fastRequest is one request the fast path takes.
type fastRequest struct {
	post       bool
	queue      []byte // the name, as sent (unreserved characters only)
	body       []byte
	json       bool   // Accept names application/json
	requestID  []byte // X-Request-Id, if sent
	size       int    // bytes of the request
	headerDone bool   // (fastNeedMore) the headers are in, the body is not
}

// fastVerdict is what parse made of the bytes.
type fastVerdict int

const (
	fastTake     fastVerdict = iota // a request the fast path answers
	fastNeedMore                    // not all of it yet
	fastDecline                     // for net/http
)

// parse reads one request from b. It takes it (fastTake) only in the forms
// described at the top of this file and only when the request passes the
// checks Echo's chain would make; anything else is net/http's.
func (f *FastPath) parse(b []byte) (req fastRequest, v fastVerdict) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	head := b
	if end >= 0 {
		head = b[:end+2]
	}
	for i, c := range head {
		if c == '\n' && (i == 0 || head[i-1] != '\r') {
			return req, fastDecline // a bare line feed: net/http's
		}
	}
	if end < 0 {
		return req, fastNeedMore
	}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	switch {
	case bytes.HasPrefix(line, []byte("POST /q/")):
		req.post, line = true, line[len("POST /q/"):]
	case bytes.HasPrefix(line, []byte("GET /q/")):
		line = line[len("GET /q/"):]
	default:
		return req, fastDecline
	}
	name, proto, ok := bytes.Cut(line, []byte(" "))
	if !ok || string(proto) != "HTTP/1.1" || !fastName(name) {
		return req, fastDecline
	}
	req.queue = name
	var host, auth, ctype []byte
	var haveHost, haveLength, haveAuth, haveType, haveAccept, haveID bool
	length := 0
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, val, ok := bytes.Cut(h, []byte(":"))
		if !ok || len(k) == 0 || !fastValue(val) {
			return req, fastDecline
		}
		val = bytes.Trim(val, " \t")
		var seen *bool
		switch {
		case asciiFold(k, "Host"):
			seen, host = &haveHost, val
		case asciiFold(k, "Content-Length"):
			seen = &haveLength
			if length, ok = fastLength(val); !ok {
				return req, fastDecline
			}
		case asciiFold(k, "Content-Type"):
			seen, ctype = &haveType, val
		case asciiFold(k, "Authorization"):
			seen, auth = &haveAuth, val
		case asciiFold(k, "Accept"):
			seen, req.json = &haveAccept, bytes.Contains(val, []byte("application/json"))
		case asciiFold(k, "X-Request-Id"):
			seen, req.requestID = &haveID, val
		case asciiFold(k, "Connection"):
			if !asciiFold(val, "keep-alive") {
				return req, fastDecline
			}
		case asciiFold(k, "User-Agent"), asciiFold(k, "Accept-Encoding"):
		default:
			return req, fastDecline
		}
		if seen != nil {
			if *seen {
				return req, fastDecline // a repeated header: net/http's
			}
			*seen = true
		}
	}
	a := f.a
	switch {
	case !haveHost || !fastHost(host):
		return req, fastDecline
	case (a.cfg.Token == "" || len(a.cfg.AllowHosts) > 0) && !a.hostAllowed(string(host)):
		return req, fastDecline // checkHost's refusal
	case a.cfg.Token != "" && !(!req.post && a.publicName(string(name))) && !a.authorizationOK(string(auth)):
		return req, fastDecline // auth's refusal
	case req.post && (!haveLength || int64(length) > a.cfg.MaxBody || fastFormType(ctype)):
		return req, fastDecline // no length, too large (BodyLimit), or a form (readMessage)
	case !req.post && length > 0:
		return req, fastDecline
	}
	req.size = end + 4 + length
	if req.size > len(b) {
		req.headerDone = true
		return req, fastNeedMore
	}
	req.body = b[end+4 : req.size]
	return req, fastTake
}

// fastName reports whether a queue name is one the fast path takes: 1 to
// maxFastName unreserved characters, and not "." or "..".
func fastName(b []byte) bool {
	if len(b) == 0 || len(b) > maxFastName || string(b) == "." || string(b) == ".." {
		return false
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// fastHost reports whether a Host value has only the characters of an IP
// literal, a port and a DNS name.
func fastHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// fastValue reports whether a header value has no control characters but
// tab (and so no obsolete line folding).
func fastValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// fastLength parses a Content-Length of at most 9 digits.
func fastLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// fastFormType reports whether a Content-Type is one of the form types
// readMessage parses (compared as mime.ParseMediaType would).
func fastFormType(ct []byte) bool {
	mt, _, _ := bytes.Cut(ct, []byte(";"))
	mt = bytes.Trim(mt, " \t")
	return asciiFold(mt, "multipart/form-data") || asciiFold(mt, "application/x-www-form-urlencoded")
}

// asciiFold reports whether b equals s, ignoring ASCII case.
func asciiFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// answer runs a taken request and appends its answer to out: the same
// status, headers (but for Date and X-Request-Id, which differ anyway) and
// body as the Echo route's.
func (fc *fastConn) answer(req *fastRequest) {
	f, a := fc.f, fc.f.a
	start := time.Now()
	ctx := context.Background()
	queue := string(req.queue)
	id := req.requestID
	if len(id) == 0 {
		id = requestID()
	}
	if req.post {
		msgs, err := a.broker.Push(ctx, queue, []broker.NewMessage{{Value: bytes.Clone(req.body)}})
		if err != nil {
			fc.error(req, id, err, start)
			return
		}
		key := msgs[0].Key()
		if req.json {
			b, _ := json.Marshal(map[string]string{"key": key})
			fc.write(http.StatusOK, "application/json", "", id, append(b, '\n'))
		} else {
			fc.write(http.StatusOK, "text/plain; charset=UTF-8", "", id, append([]byte(key), '\r', '\n'))
		}
		f.pushOK.Observe(time.Since(start).Seconds())
		return
	}
	m, err := a.broker.Take(ctx, queue)
	switch {
	case errors.Is(err, broker.ErrQueuePaused):
		fc.write(http.StatusNoContent, "", string(broker.StatusPaused), id, nil)
		f.takeEmpty.Observe(time.Since(start).Seconds())
		return
	case errors.Is(err, broker.ErrQueueEmpty):
		fc.write(http.StatusNoContent, "", "", id, nil)
		f.takeEmpty.Observe(time.Since(start).Seconds())
		return
	case err != nil:
		fc.error(req, id, err, start)
		return
	}
	mj := hardGetJSON(m)
	fc.body = append(appendMessageJSON(fc.body[:0], &mj), '\r', '\n')
	fc.write(http.StatusOK, "application/json", "", id, fc.body)
	if cap(fc.body) > fastPooledBody {
		fc.body = nil // a large message's buffer is not kept for the next
	}
	f.takeOK.Observe(time.Since(start).Seconds())
}

// error answers err as writeError does, and logs it as errorHandler does.
func (fc *fastConn) error(req *fastRequest, id []byte, err error, start time.Time) {
	a := fc.f.a
	method := http.MethodGet
	if req.post {
		method = http.MethodPost
	}
	status, body, retryAfter := errorAnswer(err)
	if status >= 500 {
		a.log.Error("request failed", "method", method, "path", "/q/"+string(req.queue), "request_id", string(id), "err", err)
	}
	b, _ := json.Marshal(body)
	fc.writeFull(status, "application/json", retryAfter, "", id, append(b, '\n'))
	a.latency.WithLabelValues(method, fastRoute, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
}

func (fc *fastConn) write(status int, ctype, queueStatus string, id, body []byte) {
	fc.writeFull(status, ctype, "", queueStatus, id, body)
}

// writeFull appends an answer with net/http's status line and header order
// (the handler's headers sorted, then Date and Content-Length).
func (fc *fastConn) writeFull(status int, ctype, retryAfter, queueStatus string, id, body []byte) {
	o := fc.out
	o = append(o, "HTTP/1.1 "...)
	o = strconv.AppendInt(o, int64(status), 10)
	o = append(o, ' ')
	o = append(o, http.StatusText(status)...)
	o = append(o, "\r\nContent-Security-Policy: "...)
	o = append(o, fc.f.deny...)
	if ctype != "" {
		o = append(o, "\r\nContent-Type: "...)
		o = append(o, ctype...)
	}
	if retryAfter != "" {
		o = append(o, "\r\nRetry-After: "...)
		o = append(o, retryAfter...)
	}
	o = append(o, "\r\nX-Frame-Options: DENY"...)
	if queueStatus != "" {
		o = append(o, "\r\nX-Queue-Status: "...)
		o = append(o, queueStatus...)
	}
	o = append(o, "\r\nX-Request-Id: "...)
	o = append(o, id...)
	if fc.f.closing.Load() {
		o = append(o, "\r\nConnection: close"...)
	}
	o = append(o, "\r\nDate: "...)
	o = append(o, httpDate()...)
	if status != http.StatusNoContent {
		o = append(o, "\r\nContent-Length: "...)
		o = strconv.AppendInt(o, int64(len(body)), 10)
	}
	o = append(o, "\r\n\r\n"...)
	fc.out = append(o, body...)
}

// requestID makes an X-Request-Id as Echo's RequestID middleware does: 32
// letters and digits.
func requestID() []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	for i := 0; i < len(b); i += 8 {
		r := rand.Uint64()
		for j := range 8 {
			b[i+j] = alphabet[r%uint64(len(alphabet))]
			r /= uint64(len(alphabet))
		}
	}
	return b
}

// httpDate is the Date header's value, made once a second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &cachedDate{sec: sec, text: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	sec  int64
	text []byte
}

var dateCache atomic.Pointer[cachedDate]
