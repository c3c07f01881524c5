package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// backendTransport carries requests to backends. The common case — a GET
// or HEAD without a body and without an upgrade — is written and answered
// on the calling goroutine over a pooled keep-alive connection: no
// per-connection reader and writer goroutines, no channel hand-offs, which
// is most of what http.Transport costs per request on a small machine.
// Everything else (bodies, websockets, other methods) goes to the standard
// http.Transport, which handles 100-continue, concurrent body upload and
// protocol switches.
type backendTransport struct {
	fallback              *http.Transport
	dialer                *net.Dialer
	responseHeaderTimeout time.Duration
	idleTimeout           time.Duration
	maxIdlePerBackend     int

	mu   sync.Mutex
	idle map[string][]*backendConn // backend address → idle connections, most recent last
}

// backendConn is one keep-alive connection to a backend.
type backendConn struct {
	net.Conn
	addr      string
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	// readDeadline is the read deadline set on the connection, zero for
	// none.
	readDeadline time.Time
}

// armHeaderTimeout makes sure c's read deadline ends the wait for a
// response head between 15/16 of the response-header timeout and the whole
// of it from now. Setting a deadline updates a runtime timer, twice per
// request if done naively; a kept-alive connection busy with short answers
// keeps its deadline and only moves it once a sixteenth of the timeout has
// passed.
func (t *backendTransport) armHeaderTimeout(c *backendConn, now time.Time) {
	if t.responseHeaderTimeout <= 0 {
		return
	}
	want := now.Add(t.responseHeaderTimeout)
	if !c.readDeadline.IsZero() && want.Sub(c.readDeadline) <= t.responseHeaderTimeout/16 {
		return
	}
	c.SetReadDeadline(want)
	c.readDeadline = want
}

// disarmHeaderTimeout clears c's read deadline, so that reading a body
// takes as long as it takes (streams, long polls, large downloads).
func (c *backendConn) disarmHeaderTimeout() {
	if c.readDeadline.IsZero() {
		return
	}
	c.SetReadDeadline(time.Time{})
	c.readDeadline = time.Time{}
}

// aLongTimeAgo is a deadline in the past: it makes blocked reads and
// writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// fastPath reports whether req can take the synchronous path.
func fastPath(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		len(req.TransferEncoding) == 0 && req.URL.Scheme == "http" &&
		req.Header.Get("Upgrade") == ""
}

// RoundTrip implements http.RoundTripper.
func (t *backendTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !fastPath(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c, reused, err := t.getConn(ctx, req.URL.Host)
		if err != nil {
			return nil, err
		}
		resp, retry, err := t.roundTrip(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		c.Close()
		// A kept-alive connection the backend closed while it was idle:
		// GET and HEAD are idempotent, so try once more on a new one.
		if reused && retry && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// roundTrip writes req on c and reads the response head. retry reports
// whether the failure looks like a connection the backend had closed.
func (t *backendTransport) roundTrip(ctx context.Context, c *backendConn, req *http.Request) (_ *http.Response, retry bool, _ error) {
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	fail := func(err error, retry bool) (*http.Response, bool, error) {
		stop()
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, retry, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(err, true)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(err, true)
	}
	t.armHeaderTimeout(c, time.Now())
	// The deadline just set may have replaced the one a cancellation set
	// (stop's function runs only once ctx is done): look again.
	if ctx.Err() != nil {
		return fail(ctx.Err(), false)
	}
	// Nothing at all back (EOF, reset) means the backend had closed the
	// connection: worth one retry. ReadResponse cannot tell that apart
	// from a cut-off header, hence the Peek.
	if _, err := c.br.Peek(1); err != nil {
		if isTimeout(err) {
			return fail(errResponseHeaderTimeout, false)
		}
		return fail(err, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			if isTimeout(err) {
				return fail(errResponseHeaderTimeout, false)
			}
			return fail(err, false)
		}
		// Informational answers (103 Early Hints, a stray 100) precede
		// the real one.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		break
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("backend switched protocols on a request that asked for no upgrade"), false)
	}
	// A body already read in whole (a short answer with a length) needs no
	// more reads: the deadline can stay for the next request.
	if resp.ContentLength < 0 || int64(c.br.Buffered()) < resp.ContentLength {
		c.disarmHeaderTimeout()
		if ctx.Err() != nil { // as above; the caller closes c
			return fail(ctx.Err(), false)
		}
	}
	resp.Body = &backendBody{rc: resp.Body, c: c, t: t, stop: stop, reusable: !resp.Close}
	return resp, false, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errResponseHeaderTimeout is a timeout (net.Error), so the proxy answers 504.
var errResponseHeaderTimeout error = &timeoutError{"timeout awaiting response headers from backend"}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// backendBody returns the connection to the pool once the body has been
// read to its end; a body closed early closes the connection.
type backendBody struct {
	rc       io.ReadCloser
	c        *backendConn
	t        *backendTransport
	stop     func() bool
	reusable bool
	done     bool
}

func (b *backendBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *backendBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *backendBody) finish(complete bool) {
	b.done = true
	// stop is false when the request's context already poisoned the
	// connection's deadline: it cannot be reused then.
	if stopped := b.stop(); complete && b.reusable && stopped {
		b.t.putIdle(b.c)
		return
	}
	b.c.Close()
}

// getConn returns an idle connection to addr, or dials one.
func (t *backendTransport) getConn(ctx context.Context, addr string) (*backendConn, bool, error) {
	now := time.Now()
	var stale []*backendConn
	t.mu.Lock()
	list := t.idle[addr]
	var c *backendConn
	for len(list) > 0 {
		last := list[len(list)-1]
		list = list[:len(list)-1]
		if now.Sub(last.idleSince) > t.idleTimeout {
			stale = append(stale, last)
			continue
		}
		c = last
		break
	}
	t.idle[addr] = list
	t.mu.Unlock()
	for _, s := range stale {
		s.Close()
	}
	if c != nil {
		return c, true, nil
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &backendConn{
		Conn: conn,
		addr: addr,
		br:   bufio.NewReaderSize(conn, bufferSize),
		bw:   bufio.NewWriterSize(conn, 4<<10),
	}, false, nil
}

// putIdle keeps c for the next request to its backend.
func (t *backendTransport) putIdle(c *backendConn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	if len(t.idle[c.addr]) >= t.maxIdlePerBackend {
		t.mu.Unlock()
		c.Close()
		return
	}
	t.idle[c.addr] = append(t.idle[c.addr], c)
	t.mu.Unlock()
}

// closeIdleExcept closes the idle connections of every backend for which
// keep is false (backends that left the table), here and in the fallback.
func (t *backendTransport) closeIdleExcept(keep func(addr string) bool) {
	var victims []*backendConn
	t.mu.Lock()
	for addr, list := range t.idle {
		if keep(addr) {
			continue
		}
		victims = append(victims, list...)
		delete(t.idle, addr)
	}
	t.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
}

// CloseIdleConnections closes every idle connection.
func (t *backendTransport) CloseIdleConnections() {
	t.closeIdleExcept(func(string) bool { return false })
	t.fallback.CloseIdleConnections()
}
