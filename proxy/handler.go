package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/internal/contract"
)

// HandlerOptions configures the proxy Handler.
type HandlerOptions struct {
	// TrustedProxies are the networks of proxies in front of Slipway. Only
	// from their addresses are a request's X-Forwarded-For, -Proto and
	// -Host kept (and extended); from anyone else they are replaced. See
	// ParseTrustedProxies.
	TrustedProxies []netip.Prefix
	// OnWake, if set, is called with the project when a request arrives for
	// a host whose containers exist but are stopped (a sleeping
	// environment): once per wake, however many requests arrive while it
	// is under way. It runs on the request path and must not block.
	OnWake func(project string)
	// WakeTimeout is how long a request for a sleeping environment is held
	// while it wakes: it is proxied as soon as the host's route runs, and
	// gets the failure page as soon as the wake fails; only a request that
	// outlasts WakeTimeout gets the waiting page (which reloads itself).
	// Zero, or no OnWake, holds no request: the waiting page at once.
	WakeTimeout time.Duration
	// Metrics, if set, records requests.
	Metrics *Metrics
	// Gate, if set, decides who may open previews (see Gate).
	Gate Gate
	// Logger; nil discards logs.
	Logger *slog.Logger
	// DialTimeout bounds connecting to a backend. Default 5s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response
	// headers once the request is sent (504 after it). Default 60s.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerBackend is how many idle keep-alive connections are
	// kept per backend. Default 512.
	MaxIdleConnsPerBackend int
}

// ParseTrustedProxies parses CIDRs (or single addresses) such as
// "10.0.0.0/8" or "192.0.2.7" for HandlerOptions.TrustedProxies.
func ParseTrustedProxies(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not a CIDR or IP address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Handler is the reverse proxy for preview hosts. It looks up each
// request's Host in the live route table and either proxies it to a
// backend or answers with a status page. Websocket and other upgraded
// connections are tracked per project and closed deliberately when their
// backend leaves the table.
type Handler struct {
	routes      *Routes
	transport   *backendTransport
	trusted     []netip.Prefix
	gate        Gate
	wake        *wakes
	metrics     *Metrics
	log         *slog.Logger
	stats       sync.Map // project → *projectStats
	hijacked    hijackRegistry
	unsubscribe func()
}

// projectStats is what the handler records per project.
type projectStats struct {
	last     atomic.Int64 // unix nanoseconds of the last request
	counters *[len(statusClasses)]prometheus.Counter
}

// bufferSize is the size of the read buffer of a backend connection.
const bufferSize = 32 << 10

// backendIdleTimeout is how long an idle keep-alive connection to a
// backend is kept.
const backendIdleTimeout = 90 * time.Second

// NewHandler returns a proxy Handler over routes. Call Close when done.
func NewHandler(routes *Routes, opts HandlerOptions) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.ResponseHeaderTimeout <= 0 {
		opts.ResponseHeaderTimeout = 60 * time.Second
	}
	if opts.MaxIdleConnsPerBackend <= 0 {
		opts.MaxIdleConnsPerBackend = 512
	}
	h := &Handler{
		routes:  routes,
		trusted: opts.TrustedProxies,
		gate:    opts.Gate,
		metrics: opts.Metrics,
		log:     opts.Logger,
	}
	h.hijacked.conns = map[*trackedConn]struct{}{}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	h.transport = &backendTransport{
		fallback: &http.Transport{
			Proxy:                 nil, // never the environment's HTTP_PROXY: backends are local
			DialContext:           dialer.DialContext,
			MaxIdleConnsPerHost:   opts.MaxIdleConnsPerBackend,
			IdleConnTimeout:       backendIdleTimeout,
			ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
			ExpectContinueTimeout: time.Second,
			// The proxy passes bodies through untouched: no transparent gzip.
			DisableCompression: true,
			WriteBufferSize:    bufferSize,
			ReadBufferSize:     bufferSize,
		},
		dialer:                dialer,
		responseHeaderTimeout: opts.ResponseHeaderTimeout,
		idleTimeout:           backendIdleTimeout,
		maxIdlePerBackend:     opts.MaxIdleConnsPerBackend,
		idle:                  map[string][]*backendConn{},
	}
	h.unsubscribe = routes.Subscribe(h.tableChanged)
	h.wake = newWakes(routes, opts.OnWake, opts.WakeTimeout)
	return h
}

// Close stops following the route table, closes every hijacked connection
// and the idle backend connections.
func (h *Handler) Close() {
	h.unsubscribe()
	h.wake.close()
	h.CloseHijacked()
	h.transport.CloseIdleConnections()
}

// CloseHijacked closes every upgraded (websocket) connection and returns
// how many it closed. The server calls it at the end of a shutdown.
func (h *Handler) CloseHijacked() int {
	return h.hijacked.closeWhere(func(*trackedConn) bool { return true })
}

// HijackedCount returns how many upgraded connections are open.
func (h *Handler) HijackedCount() int {
	h.hijacked.mu.Lock()
	defer h.hijacked.mu.Unlock()
	return len(h.hijacked.conns)
}

// LastRequest returns when the last request for one of project's hosts
// arrived, if one did since the project appeared in the table.
func (h *Handler) LastRequest(project string) (time.Time, bool) {
	v, ok := h.stats.Load(project)
	if !ok {
		return time.Time{}, false
	}
	ns := v.(*projectStats).last.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// LastRequests returns the last request time of every project that had a
// request.
func (h *Handler) LastRequests() map[string]time.Time {
	out := map[string]time.Time{}
	h.stats.Range(func(k, v any) bool {
		if ns := v.(*projectStats).last.Load(); ns != 0 {
			out[k.(string)] = time.Unix(0, ns)
		}
		return true
	})
	return out
}

func (h *Handler) statsFor(project string) *projectStats {
	if v, ok := h.stats.Load(project); ok {
		return v.(*projectStats)
	}
	v, _ := h.stats.LoadOrStore(project, &projectStats{counters: h.metrics.projectCounters(project)})
	return v.(*projectStats)
}

// unknownProject counts requests for hosts without an environment.
const unknownProject = "unknown"

// lookup finds the route for a request's Host: first the fast path (the
// header as sent, without port, is already a table key), then the
// normalized form (upper case, trailing dot).
func lookup(t *Table, hostHeader string) *Route {
	h := hostHeader
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	if r := t.Lookup(h); r != nil {
		return r
	}
	if n := contract.NormalizeHost(hostHeader); n != "" && n != h {
		return t.Lookup(n)
	}
	return nil
}

// ServeHTTP proxies r to a backend of its host or answers with a page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt := lookup(h.routes.Table(), r.Host)
	if h.gate != nil && h.admit(w, r, rt, start) {
		return
	}
	if rt == nil {
		writePage(w, notFoundPage, http.StatusNotFound, 0)
		h.record(h.statsFor(unknownProject), http.StatusNotFound, start)
		return
	}
	st := h.statsFor(rt.Project)
	st.last.Store(start.UnixNano())
	if rt.Phase != PhaseRunning {
		if rt = h.awaitRunning(w, r, rt, st, start); rt == nil {
			return // answered (see wake.go)
		}
	}
	h.forward(w, r, rt, st, start)
}

func (h *Handler) record(st *projectStats, status int, start time.Time) {
	if h.metrics == nil {
		return
	}
	st.counters[statusClass(status)].Inc()
	h.metrics.observeDuration(time.Since(start).Seconds())
}

func (h *Handler) trustedPeer(remoteAddr string) bool {
	if len(h.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range h.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// proxyError turns a failure to reach the backend into a page: 504 for a
// timeout, 502 for anything else. A client that went away gets nothing.
func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		h.log.Warn("backend timed out", "host", r.Host, "backend", r.URL.Host, "err", err)
		writePage(w, gatewayTimeoutPage, http.StatusGatewayTimeout, 0)
		return
	}
	h.log.Warn("backend unreachable", "host", r.Host, "backend", r.URL.Host, "err", err)
	writePage(w, badGatewayPage, http.StatusBadGateway, 0)
}

// tableChanged runs after every table swap: upgraded connections and idle
// keep-alive connections whose backend is gone are closed, and projects
// that left the table are forgotten.
func (h *Handler) tableChanged(t *Table) {
	h.hijacked.closeWhere(func(c *trackedConn) bool { return !backendLive(t, c.project, c.backend) })
	live := map[string]bool{}
	for _, r := range t.routes {
		for _, b := range r.Backends {
			live[b.Addr] = true
		}
	}
	h.transport.closeIdleExcept(func(addr string) bool { return live[addr] })
	h.stats.Range(func(k, _ any) bool {
		p := k.(string)
		if p != unknownProject && len(t.projects[p]) == 0 {
			h.stats.Delete(p)
			h.metrics.deleteProject(p)
		}
		return true
	})
}

// backendLive reports whether backend still serves one of project's hosts.
func backendLive(t *Table, project, backend string) bool {
	for _, host := range t.projects[project] {
		r := t.routes[host]
		if r.Phase != PhaseRunning {
			continue
		}
		for _, b := range r.Backends {
			if b.Addr == backend {
				return true
			}
		}
	}
	return false
}

// responseRecorder records the status for metrics and registers hijacked
// connections. Unwrap gives http.ResponseController (flushes, deadlines)
// the real writer.
type responseRecorder struct {
	http.ResponseWriter
	status  int
	h       *Handler
	project string
	backend string
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes over the client connection for an upgraded protocol and
// tracks it, so it can be closed when its backend goes away.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	tc := w.h.hijacked.add(conn, w.project, w.backend)
	// The table may have changed between choosing the backend and now;
	// tableChanged ran before the add or sees the conn, this catches the rest.
	if !backendLive(w.h.routes.Table(), w.project, w.backend) {
		tc.Close()
	}
	return tc, brw, nil
}

// hijackRegistry holds the upgraded connections, by project and backend.
type hijackRegistry struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func (reg *hijackRegistry) add(c net.Conn, project, backend string) *trackedConn {
	tc := &trackedConn{Conn: c, reg: reg, project: project, backend: backend}
	reg.mu.Lock()
	reg.conns[tc] = struct{}{}
	reg.mu.Unlock()
	return tc
}

// closeWhere closes the connections for which match is true.
func (reg *hijackRegistry) closeWhere(match func(*trackedConn) bool) int {
	reg.mu.Lock()
	var victims []*trackedConn
	for c := range reg.conns {
		if match(c) {
			victims = append(victims, c)
			delete(reg.conns, c)
		}
	}
	reg.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	return len(victims)
}

// trackedConn is a hijacked client connection that leaves the registry
// when closed.
type trackedConn struct {
	net.Conn
	reg     *hijackRegistry
	project string
	backend string
	once    sync.Once
	err     error
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.reg.mu.Lock()
		delete(c.reg.conns, c)
		c.reg.mu.Unlock()
		c.err = c.Conn.Close()
	})
	return c.err
}
