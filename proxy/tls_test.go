package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/libdns/libdns"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// pebble is an in-process ACME CA.
type pebble struct {
	dirURL   string
	tlsRoot  []byte         // PEM of the ACME server's HTTPS certificate
	issuer   *x509.CertPool // roots that verify issued certificates
	orders   atomic.Int64   // new-order requests received
	ordersMu sync.Mutex
	names    []string // identifiers of the orders, for messages
}

// pebbleOptions change how the in-process CA validates.
type pebbleOptions struct {
	// validate makes the VA really fetch HTTP-01 challenges, from httpPort
	// of the address resolver (host:port, DNS over TCP) gives each name.
	validate bool
	httpPort int
	resolver string
	// blocked names are refused at new-order.
	blocked []string
}

func startPebble(t *testing.T) *pebble { return startPebbleWith(t, pebbleOptions{}) }

func startPebbleWith(t *testing.T, o pebbleOptions) *pebble {
	t.Helper()
	// Read by the VA and WFE when they are created.
	if o.validate {
		t.Setenv("PEBBLE_VA_ALWAYS_VALID", "0")
	} else {
		t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	}
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	for _, b := range o.blocked {
		if err := store.AddBlockedDomain(b); err != nil {
			t.Fatal(err)
		}
	}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	httpPort := 80
	if o.httpPort != 0 {
		httpPort = o.httpPort
	}
	validator := va.New(logger, httpPort, 443, false, o.resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	p := &pebble{}
	h := front.Handler()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.dirURL = srv.URL + wfe.DirectoryPath
	p.tlsRoot = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	p.issuer = x509.NewCertPool()
	if !p.issuer.AppendCertsFromPEM(authority.GetRootCert(0).PEM()) {
		t.Fatal("pebble root PEM")
	}
	return p
}

// handshake connects to addr with SNI name and verifies the certificate
// against the issuing CA. It returns the negotiated protocol.
func (p *pebble) handshake(addr, name string) (string, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		ServerName: name,
		RootCAs:    p.issuer,
		NextProtos: []string{"h2", "http/1.1"},
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().NegotiatedProtocol, nil
}

// httpsClient sends every request to addr, verifying against the issuing CA.
func (p *pebble) httpsClient(addr string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: p.issuer},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// tlsStack is a proxy with TLS on loopback listeners.
type tlsStack struct {
	env       *testEnv
	tls       *TLS
	server    *Server
	httpsAddr string
	httpAddr  string
	stop      func() error
	metrics   *Metrics
	reg       *prometheus.Registry
}

func startTLSStack(t *testing.T, env *testEnv, opts TLSOptions) *tlsStack {
	t.Helper()
	return startTLSStackOn(t, env, opts, nil)
}

// startTLSStackOn is startTLSStack with a pre-made HTTP listener.
func startTLSStackOn(t *testing.T, env *testEnv, opts TLSOptions, httpLn net.Listener) *tlsStack {
	t.Helper()
	var err error
	if httpLn == nil {
		if httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	opts.Metrics = m
	opts.HTTPChallengePort = httpLn.Addr().(*net.TCPAddr).Port
	tlsMgr, err := NewTLS(env.routes, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tlsMgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		tlsMgr.Stop()
	})
	s, stop := startServer(t, ServerOptions{
		Domain:        opts.Domain,
		HTTPListener:  httpLn,
		HTTPSListener: httpsLn,
		Proxy:         env.handler,
		Control:       text("control"),
		TLS:           tlsMgr,
		NoIndex:       true,
	})
	return &tlsStack{env: env, tls: tlsMgr, server: s, httpsAddr: s.HTTPSAddr().String(), httpAddr: s.HTTPAddr().String(), stop: stop, metrics: m, reg: reg}
}

func TestTLSOnDemand(t *testing.T) {
	p := startPebble(t)
	storage := t.TempDir()
	env := newTestEnv(t, HandlerOptions{})
	env.addBackend(t, "p1-web-1", "p1", "pr-1.example.test", text("pr-1 over tls"))
	st := startTLSStack(t, env, TLSOptions{
		Mode: TLSOnDemand, Domain: "example.test", Email: "ops@example.test",
		CA: p.dirURL, CARootPEM: p.tlsRoot, StorageDir: storage,
	})

	// Pre-issued as soon as the host runs, before any handshake.
	waitFor(t, 30*time.Second, "the pre-issue order for pr-1", func() (bool, string) {
		return p.orders.Load() >= 1, "no order yet"
	})
	waitFor(t, 30*time.Second, "a verified handshake for pr-1", func() (bool, string) {
		proto, err := p.handshake(st.httpsAddr, "pr-1.example.test")
		if err != nil {
			return false, err.Error()
		}
		return proto == "h2", "protocol " + proto
	})
	ordersAfterIssue := p.orders.Load()

	client := p.httpsClient(st.httpsAddr)
	resp, err := client.Get("https://pr-1.example.test/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "pr-1 over tls" || resp.ProtoMajor != 2 {
		t.Fatalf("https: %d %s %q", resp.StatusCode, resp.Proto, body)
	}

	// Handshakes for names without an environment place no order.
	if err := env.routes.SetState("p9", []string{"pr-9.example.test"}, State{Phase: PhaseRemoving}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"random-name.example.test", "pr-2.example.test", "pr-9.example.test", "evil.org", "a.b.example.test", "PR-3.EXAMPLE.TEST"} {
		if _, err := p.handshake(st.httpsAddr, name); err == nil {
			t.Errorf("handshake for %s succeeded", name)
		}
	}
	if got := p.orders.Load(); got != ordersAfterIssue {
		t.Fatalf("handshakes for unknown names placed %d orders", got-ordersAfterIssue)
	}

	// A Host the connection's certificate does not cover gets 421, never
	// another environment's content.
	env.addBackend(t, "p2-web-1", "p2", "pr-2.example.test", text("pr-2"))
	req, _ := http.NewRequest(http.MethodGet, "https://pr-1.example.test/", nil)
	req.Host = "pr-2.example.test"
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(string(body), "pr-2") {
		t.Fatalf("SNI pr-1, Host pr-2: %d %q", resp.StatusCode, body)
	}
	// pr-2 got running backends: pre-issued without a handshake.
	waitFor(t, 30*time.Second, "the pre-issue order for pr-2", func() (bool, string) {
		return p.orders.Load() > ordersAfterIssue, "no new order"
	})

	// Plain HTTP: preview hosts and the domain are redirected, other hosts
	// reach the control surface.
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for host, want := range map[string]string{
		"pr-1.example.test":      "https://pr-1.example.test:" + portOf(st.httpsAddr) + "/x?y=1",
		"PR-1.example.test.:80":  "https://pr-1.example.test:" + portOf(st.httpsAddr) + "/x?y=1",
		"example.test":           "https://example.test:" + portOf(st.httpsAddr) + "/x?y=1",
		"unknown-1.example.test": "https://unknown-1.example.test:" + portOf(st.httpsAddr) + "/x?y=1",
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+st.httpAddr+"/x?y=1", nil)
		req.Host = host
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("http %s: %d %q, want 308 %q", host, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if got, preview := resp.Header.Get("X-Robots-Tag"), host != "example.test"; preview != (got == "noindex") {
			t.Errorf("http %s: X-Robots-Tag %q on the redirect", host, got)
		}
	}
	if status, body, err := hostGet(t, plain, "http://"+st.httpAddr+"/healthz", "127.0.0.1"); err != nil || status != 200 || body != "control" {
		t.Errorf("http by IP: %d %q %v", status, body, err)
	}

	// Metrics count what the CA saw.
	if got, want := metricValue(t, st.reg, "slipway_proxy_certificate_orders_total", ""), float64(p.orders.Load()); got != want {
		t.Errorf("certificate orders metric %v, CA saw %v", got, want)
	}

	// A restart with the same storage reuses the certificates: no order.
	st.stop()
	ordersBeforeRestart := p.orders.Load()
	env2 := newTestEnv(t, HandlerOptions{})
	env2.addBackend(t, "p1-web-1", "p1", "pr-1.example.test", text("pr-1 after restart"))
	st2 := startTLSStack(t, env2, TLSOptions{
		Mode: TLSOnDemand, Domain: "example.test", Email: "ops@example.test",
		CA: p.dirURL, CARootPEM: p.tlsRoot, StorageDir: storage,
	})
	resp, err = p.httpsClient(st2.httpsAddr).Get("https://pr-1.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "pr-1 after restart" {
		t.Fatalf("after restart: %q", body)
	}
	time.Sleep(200 * time.Millisecond) // let any background manage run
	if got := p.orders.Load(); got != ordersBeforeRestart {
		t.Fatalf("restart placed %d new orders", got-ordersBeforeRestart)
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// memDNS is an in-memory libdns provider that records what it was asked.
type memDNS struct {
	mu       sync.Mutex
	appended []string
	deleted  []string
}

func (m *memDNS) AppendRecords(_ context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		rr := r.RR()
		m.appended = append(m.appended, rr.Type+" "+rr.Name+"."+zone)
	}
	return recs, nil
}

func (m *memDNS) DeleteRecords(_ context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		rr := r.RR()
		m.deleted = append(m.deleted, rr.Type+" "+rr.Name+"."+zone)
	}
	return recs, nil
}

// startDNSServer answers for zone on loopback, over UDP and TCP on one
// port: SOA for the zone itself (so the DNS-01 solver finds the zone
// offline) and A 127.0.0.1 for every name in it (so Pebble's VA reaches
// the proxy's HTTP listener).
func startDNSServer(t *testing.T, zone string) string {
	t.Helper()
	zone = dns.Fqdn(zone)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		inZone := name == zone || strings.HasSuffix(name, "."+zone)
		switch {
		case !inZone:
			m.Rcode = dns.RcodeNameError
		case name == zone && q.Qtype == dns.TypeSOA:
			m.Answer = append(m.Answer, &dns.SOA{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
				Ns:  "ns." + zone, Mbox: "admin." + zone, Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 60,
			})
		case q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
		w.WriteMsg(m)
	})
	for attempt := 0; ; attempt++ {
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udp, err := net.ListenPacket("udp", tcp.Addr().String())
		if err != nil {
			tcp.Close()
			if attempt < 10 {
				continue
			}
			t.Fatal(err)
		}
		for _, srv := range []*dns.Server{{Listener: tcp, Handler: handler}, {PacketConn: udp, Handler: handler}} {
			go srv.ActivateAndServe()
			t.Cleanup(func() { srv.Shutdown() })
		}
		return tcp.Addr().String()
	}
}

func TestTLSWildcardThroughDNS01(t *testing.T) {
	p := startPebble(t)
	provider := &memDNS{}
	resolver := startDNSServer(t, "example.test")
	env := newTestEnv(t, HandlerOptions{})
	env.addBackend(t, "p1-web-1", "p1", "pr-1.example.test", text("pr-1 wildcard"))
	st := startTLSStack(t, env, TLSOptions{
		Mode: TLSWildcard, Domain: "example.test", Email: "ops@example.test",
		CA: p.dirURL, CARootPEM: p.tlsRoot, StorageDir: t.TempDir(),
		DNS: provider, DNSResolvers: []string{resolver}, DNSPropagationTimeout: -1,
	})
	waitFor(t, 30*time.Second, "the wildcard certificate", func() (bool, string) {
		_, err := p.handshake(st.httpsAddr, "anything.example.test")
		if err != nil {
			return false, err.Error()
		}
		_, err = p.handshake(st.httpsAddr, "example.test")
		return err == nil, "domain: " + func() string {
			if err != nil {
				return err.Error()
			}
			return ""
		}()
	})
	orders := p.orders.Load()
	if orders != 2 {
		t.Errorf("%d orders for *.example.test and example.test, want 2", orders)
	}
	provider.mu.Lock()
	if len(provider.appended) == 0 || !strings.HasPrefix(provider.appended[0], "TXT _acme-challenge.example.test") {
		t.Errorf("DNS records appended: %v", provider.appended)
	}
	provider.mu.Unlock()
	waitFor(t, 10*time.Second, "the challenge records cleaned up", func() (bool, string) {
		provider.mu.Lock()
		defer provider.mu.Unlock()
		return len(provider.deleted) == len(provider.appended), strings.Join(provider.deleted, ",")
	})

	// The wildcard serves every preview; a connection opened for one name
	// the wildcard covers may carry another (HTTP/2 coalescing).
	client := p.httpsClient(st.httpsAddr)
	req, _ := http.NewRequest(http.MethodGet, "https://other.example.test/", nil)
	req.Host = "pr-1.example.test"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "pr-1 wildcard" {
		t.Fatalf("wildcard: %d %q", resp.StatusCode, body)
	}
	// Names outside the wildcard get nothing, and no order.
	for _, name := range []string{"evil.org", "a.b.example.test"} {
		if _, err := p.handshake(st.httpsAddr, name); err == nil {
			t.Errorf("handshake for %s succeeded", name)
		}
	}
	if got := p.orders.Load(); got != orders {
		t.Fatalf("handshakes placed %d orders", got-orders)
	}
}

func TestNewTLSRejectsBadOptions(t *testing.T) {
	routes := NewRoutes(nil, anyHost{})
	if tl, err := NewTLS(routes, TLSOptions{Mode: TLSOff}); tl != nil || err != nil {
		t.Fatalf("off: %v %v", tl, err)
	}
	if tl, err := NewTLS(routes, TLSOptions{}); tl != nil || err != nil {
		t.Fatalf("empty mode: %v %v", tl, err)
	}
	bad := map[string]TLSOptions{
		"unknown mode":         {Mode: "always", Domain: "example.test", StorageDir: t.TempDir()},
		"no domain":            {Mode: TLSOnDemand, StorageDir: t.TempDir()},
		"no storage":           {Mode: TLSOnDemand, Domain: "example.test"},
		"bad CA root":          {Mode: TLSOnDemand, Domain: "example.test", StorageDir: t.TempDir(), CARootPEM: []byte("nope")},
		"wildcard no provider": {Mode: TLSWildcard, Domain: "example.test", StorageDir: t.TempDir()},
		"unknown provider":     {Mode: TLSWildcard, Domain: "example.test", StorageDir: t.TempDir(), DNSProvider: "route99"},
		"cloudflare no token":  {Mode: TLSWildcard, Domain: "example.test", StorageDir: t.TempDir(), DNSProvider: "cloudflare"},
	}
	for name, opts := range bad {
		if _, err := NewTLS(routes, opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewTLS(routes, TLSOptions{Mode: TLSWildcard, Domain: "example.test", StorageDir: t.TempDir(), DNSProvider: "Cloudflare", DNSAPIToken: "x"}); err != nil {
		t.Errorf("cloudflare by name: %v", err)
	}
}

func TestTLSAnswersHTTP01Challenge(t *testing.T) {
	// The VA really validates here: it resolves the name through the test
	// DNS server to 127.0.0.1 and fetches the challenge from the proxy's
	// HTTP listener, the one that otherwise redirects to HTTPS.
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resolver := startDNSServer(t, "example.test")
	p := startPebbleWith(t, pebbleOptions{validate: true, httpPort: httpLn.Addr().(*net.TCPAddr).Port, resolver: resolver})
	env := newTestEnv(t, HandlerOptions{})
	env.addBackend(t, "p1-web-1", "p1", "pr-1.example.test", text("validated"))
	st := startTLSStackOn(t, env, TLSOptions{
		Mode: TLSOnDemand, Domain: "example.test", Email: "ops@example.test",
		CA: p.dirURL, CARootPEM: p.tlsRoot, StorageDir: t.TempDir(),
	}, httpLn)
	waitFor(t, 30*time.Second, "a certificate validated over HTTP-01", func() (bool, string) {
		_, err := p.handshake(st.httpsAddr, "pr-1.example.test")
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if n := metricValue(t, st.reg, "slipway_proxy_certificate_failures_total", ""); n != 0 {
		t.Fatalf("%v failed orders", n)
	}
}

func TestTLSCountsFailedOrders(t *testing.T) {
	p := startPebbleWith(t, pebbleOptions{blocked: []string{"blocked.example.test"}})
	env := newTestEnv(t, HandlerOptions{})
	env.addBackend(t, "p1-web-1", "p1", "blocked.example.test", text("never"))
	st := startTLSStack(t, env, TLSOptions{
		Mode: TLSOnDemand, Domain: "example.test", Email: "ops@example.test",
		CA: p.dirURL, CARootPEM: p.tlsRoot, StorageDir: t.TempDir(),
	})
	waitFor(t, 30*time.Second, "the refused order counted", func() (bool, string) {
		n := metricValue(t, st.reg, "slipway_proxy_certificate_failures_total", "")
		return n >= 1, fmt.Sprint(n, " failures")
	})
}
