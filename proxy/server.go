package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// ServerOptions configures the Server.
type ServerOptions struct {
	// Domain is the preview domain. Requests for its subdomains go to the
	// proxy; every other Host (the domain itself, IP addresses, other
	// names) goes to Control.
	Domain string
	// HTTPAddr is the plain HTTP listen address, e.g. ":80". Ignored when
	// HTTPListener is set.
	HTTPAddr string
	// HTTPSAddr is the HTTPS listen address, e.g. ":443", used when TLS is
	// set. Ignored when HTTPSListener is set.
	HTTPSAddr string
	// HTTPListener and HTTPSListener are pre-made listeners (port 0 in
	// tests). The Server closes them.
	HTTPListener  net.Listener
	HTTPSListener net.Listener
	// Proxy serves preview hosts. Required.
	Proxy *Handler
	// Control serves everything else (webhooks, /healthz, /metrics, the
	// dashboard). Nil answers 404.
	Control http.Handler
	// TLS, when set, serves HTTPS; the HTTP listener then answers ACME
	// challenges and redirects the domain and its subdomains to HTTPS (other
	// hosts, such as health probes to an IP, still reach Control over HTTP).
	TLS *TLS
	// NoIndex adds X-Robots-Tag: noindex to the HTTPS redirect of preview
	// hosts, the one preview response the Proxy (and its gate) never sees.
	NoIndex bool
	// ReadHeaderTimeout bounds reading a request's headers (slow-loris).
	// Default 10s. There is no read or write timeout for whole requests, so
	// uploads, websockets and event streams may last.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 2m.
	IdleTimeout time.Duration
	// ShutdownGrace bounds how long in-flight requests may take to finish
	// after the context ends; then connections are closed. Default 10s.
	ShutdownGrace time.Duration
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// Server runs the HTTP and HTTPS listeners and routes requests by Host.
type Server struct {
	domain  string
	proxy   *Handler
	control http.Handler
	tls     *TLS
	noindex bool
	grace   time.Duration
	log     *slog.Logger

	httpLn, httpsLn   net.Listener
	httpSrv, httpsSrv *http.Server
	httpsPort         string
}

// NewServer binds the listeners (unless given) and returns a Server ready
// to Run. On error nothing stays bound.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Proxy == nil {
		return nil, errors.New("server: no proxy handler")
	}
	domain := strings.ToLower(strings.TrimSuffix(opts.Domain, "."))
	if err := contract.ValidHost(domain); err != nil {
		return nil, fmt.Errorf("server: domain: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	if opts.Control == nil {
		opts.Control = http.NotFoundHandler()
	}
	s := &Server{
		domain:  domain,
		proxy:   opts.Proxy,
		control: opts.Control,
		tls:     opts.TLS,
		noindex: opts.NoIndex,
		grace:   opts.ShutdownGrace,
		log:     opts.Logger,
		httpLn:  opts.HTTPListener,
		httpsLn: opts.HTTPSListener,
	}
	var err error
	if s.httpLn == nil {
		if s.httpLn, err = net.Listen("tcp", opts.HTTPAddr); err != nil {
			return nil, fmt.Errorf("listen http %s: %w", opts.HTTPAddr, err)
		}
	}
	if s.tls != nil && s.httpsLn == nil {
		if s.httpsLn, err = net.Listen("tcp", opts.HTTPSAddr); err != nil {
			s.httpLn.Close()
			return nil, fmt.Errorf("listen https %s: %w", opts.HTTPSAddr, err)
		}
	}
	errLog := slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)
	s.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ErrorLog:          errLog,
	}
	if s.tls != nil {
		_, s.httpsPort, _ = net.SplitHostPort(s.httpsLn.Addr().String())
		s.httpsSrv = &http.Server{
			Handler:           http.HandlerFunc(s.route),
			ReadHeaderTimeout: opts.ReadHeaderTimeout,
			IdleTimeout:       opts.IdleTimeout,
			TLSConfig:         s.tls.TLSConfig(),
			ErrorLog:          errLog,
		}
	}
	return s, nil
}

// HTTPAddr returns the HTTP listener's address.
func (s *Server) HTTPAddr() net.Addr { return s.httpLn.Addr() }

// HTTPSAddr returns the HTTPS listener's address, or nil without TLS.
func (s *Server) HTTPSAddr() net.Addr {
	if s.httpsLn == nil {
		return nil
	}
	return s.httpsLn.Addr()
}

// Run serves until ctx ends, then shuts down gracefully: listeners close,
// in-flight requests get ShutdownGrace to finish, then remaining
// connections and every hijacked (websocket) connection are closed. It
// returns nil after a shutdown caused by ctx, or the error of a listener
// that failed.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.httpSrv.Serve(s.httpLn) }()
	if s.httpsSrv != nil {
		go func() { errc <- s.httpsSrv.ServeTLS(s.httpsLn, "", "") }()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("serve: %w", err)
	}
	s.shutdown()
	return runErr
}

// shutdown stops both servers within the grace period, then closes
// hijacked connections.
func (s *Server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{s.httpSrv, s.httpsSrv} {
		if srv == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				s.log.Warn("requests still running after the shutdown grace; closing them", "err", err)
				srv.Close()
			}
		}()
	}
	wg.Wait()
	if n := s.proxy.CloseHijacked(); n > 0 {
		s.log.Info("closed upgraded connections at shutdown", "count", n)
	}
}

// hostOnly returns the Host header without port and trailing dot, lower
// case. It does not validate.
func hostOnly(hostHeader string) string {
	h := hostHeader
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// isPreview reports whether a Host header names a subdomain of the domain.
func (s *Server) isPreview(hostHeader string) bool {
	h := hostOnly(hostHeader)
	return len(h) > len(s.domain)+1 && strings.HasSuffix(h, s.domain) && h[len(h)-len(s.domain)-1] == '.'
}

// serveHTTP handles the plain HTTP listener. With TLS on, it answers ACME
// challenges and redirects the domain and its subdomains to HTTPS.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.tls == nil {
		s.route(w, r)
		return
	}
	if s.tls.HandleHTTPChallenge(w, r) {
		return
	}
	host := contract.NormalizeHost(r.Host)
	if host != "" && (host == s.domain || s.isPreview(host)) {
		target := "https://" + host
		if s.httpsPort != "443" {
			target += ":" + s.httpsPort
		}
		if s.noindex && host != s.domain {
			w.Header()["X-Robots-Tag"] = []string{"noindex"}
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	if s.isPreview(r.Host) { // under the domain but not a valid name
		s.proxy.ServeHTTP(w, r)
		return
	}
	s.control.ServeHTTP(w, r)
}

// route sends preview hosts to the proxy and everything else to Control.
// Over TLS, a request whose Host the connection's certificate does not
// cover gets 421, so a connection opened for one preview never carries
// requests for another.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if !s.isPreview(r.Host) {
		s.control.ServeHTTP(w, r)
		return
	}
	if r.TLS != nil && s.tls != nil {
		host := contract.NormalizeHost(r.Host)
		if host != "" && !s.tls.Covers(contract.NormalizeHost(r.TLS.ServerName), host) {
			writePage(w, misdirectedPage, http.StatusMisdirectedRequest, 0)
			return
		}
	}
	s.proxy.ServeHTTP(w, r)
}
