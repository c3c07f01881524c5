package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/libdns/cloudflare"

	"github.com/slipwayhq/slipway/internal/contract"
)

// TLS modes, as in slipway.yaml's tls.mode.
const (
	TLSOff      = "off"
	TLSOnDemand = "on-demand"
	TLSWildcard = "wildcard"
)

// TLSOptions configures certificates for preview hosts.
type TLSOptions struct {
	// Mode is TLSOff, TLSOnDemand or TLSWildcard.
	Mode string
	// Domain is the preview domain: hosts are its subdomains.
	Domain string
	// Email for the ACME account.
	Email string
	// CA is the ACME directory URL. Default Let's Encrypt production.
	CA string
	// CARootPEM holds roots trusted for the ACME server's HTTPS (private
	// CAs, tests). Empty: the system roots.
	CARootPEM []byte
	// StorageDir keeps the account, keys and certificates across restarts
	// (under state_dir), so a restart never orders a certificate again.
	StorageDir string
	// HTTPChallengePort is the port of the HTTP listener, which answers the
	// ACME HTTP-01 challenge (the CA always asks on port 80; set this when
	// port 80 is forwarded elsewhere). Default 80.
	HTTPChallengePort int
	// DNSProvider names the libdns provider for wildcard mode:
	// "cloudflare".
	DNSProvider string
	// DNSAPIToken is the provider's API token.
	DNSAPIToken string
	// DNS, if set, is the DNS provider used for wildcard mode instead of
	// the one DNSProvider names (tests, other providers).
	DNS certmagic.DNSProvider
	// DNSResolvers are the resolvers (host:port) used to find the zone and
	// check propagation of DNS-01 records. Default: the system's.
	DNSResolvers []string
	// DNSPropagationTimeout bounds the wait for the challenge record to be
	// visible; -1 skips the check. Default 2m.
	DNSPropagationTimeout time.Duration
	// Metrics, if set, counts certificate orders and failures.
	Metrics *Metrics
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// TLS manages certificates for preview hosts with certmagic.
//
// In on-demand mode a certificate is issued only for a host that has an
// environment in the live route table (or the domain itself): the decision
// is an in-memory lookup. Hosts are pre-issued as soon as they get running
// backends, and certificates live in StorageDir, so restarts and redeploys
// never order again. In wildcard mode one *.domain certificate (and one for
// the domain) is obtained through DNS-01 and nothing is ever issued during
// a handshake.
type TLS struct {
	mode    string
	domain  string
	routes  *Routes
	cache   *certmagic.Cache
	manager *certmagic.Config // background: pre-issue, load, renew
	serving *certmagic.Config // handshakes (on-demand decisions)
	issuer  *certmagic.ACMEIssuer
	log     *slog.Logger

	mu          sync.Mutex
	managed     map[string]bool // on-demand: hosts pre-issued
	kick        chan struct{}
	unsubscribe func()
	stop        context.CancelFunc
	done        chan struct{}
}

// ParseTLSMode checks a tls.mode value; "" means off.
func ParseTLSMode(mode string) (string, error) {
	switch mode {
	case "", TLSOff:
		return TLSOff, nil
	case TLSOnDemand, TLSWildcard:
		return mode, nil
	}
	return "", fmt.Errorf("tls mode %q: want off, on-demand or wildcard", mode)
}

// NewTLS sets up certificate management. It returns nil and no error when
// the mode is off. Call Start to begin managing certificates and Stop when
// done.
func NewTLS(routes *Routes, opts TLSOptions) (*TLS, error) {
	mode, err := ParseTLSMode(opts.Mode)
	if err != nil {
		return nil, err
	}
	if mode == TLSOff {
		return nil, nil
	}
	domain := strings.ToLower(strings.TrimSuffix(opts.Domain, "."))
	if err := contract.ValidHost(domain); err != nil {
		return nil, fmt.Errorf("tls: domain: %w", err)
	}
	if opts.StorageDir == "" {
		return nil, errors.New("tls: no storage directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPChallengePort == 0 {
		opts.HTTPChallengePort = 80
	}
	var roots *x509.CertPool
	if len(opts.CARootPEM) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(opts.CARootPEM) {
			return nil, errors.New("tls: CA root: no PEM certificate found")
		}
	}
	t := &TLS{
		mode:    mode,
		domain:  domain,
		routes:  routes,
		log:     opts.Logger,
		managed: map[string]bool{},
		kick:    make(chan struct{}, 1),
	}
	zl := zapToSlog(opts.Logger.With("component", "certmagic"))
	t.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return t.manager, nil },
		Logger:           zl,
	})
	base := certmagic.Config{
		Storage: &certmagic.FileStorage{Path: opts.StorageDir},
		OCSP:    certmagic.OCSPConfig{DisableStapling: true},
		Logger:  zl,
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			switch event {
			case "cert_obtaining":
				opts.Metrics.certOrder()
			case "cert_failed":
				opts.Metrics.certFailure()
				t.log.Warn("certificate order failed", "data", fmt.Sprint(data))
			case "cert_obtained":
				t.log.Info("certificate obtained", "identifier", fmt.Sprint(data["identifier"]))
			}
			return nil
		},
	}
	template := certmagic.ACMEIssuer{
		CA:                      opts.CA,
		Email:                   opts.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		DisableTLSALPNChallenge: true,
		AltHTTPPort:             opts.HTTPChallengePort,
		Logger:                  zl,
	}
	if template.CA == "" {
		template.CA = certmagic.LetsEncryptProductionCA
	}
	if mode == TLSWildcard {
		provider := opts.DNS
		if provider == nil {
			if provider, err = dnsProvider(opts.DNSProvider, opts.DNSAPIToken); err != nil {
				return nil, err
			}
		}
		timeout := opts.DNSPropagationTimeout
		if timeout == 0 {
			timeout = 2 * time.Minute
		}
		template.DisableHTTPChallenge = true
		template.DNS01Solver = &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
			DNSProvider:        provider,
			PropagationTimeout: timeout,
			Resolvers:          opts.DNSResolvers,
			Logger:             zl,
		}}
	}
	// manager obtains, loads and renews certificates in the background
	// (ManageAsync on a config with OnDemand set would only allow-list the
	// names). serving answers handshakes from the shared cache; in
	// on-demand mode it may also obtain a missing certificate, but only
	// for a name decide allows.
	t.manager = certmagic.New(t.cache, base)
	t.issuer = certmagic.NewACMEIssuer(t.manager, template)
	t.manager.Issuers = []certmagic.Issuer{t.issuer}
	t.serving = t.manager
	if mode == TLSOnDemand {
		serving := base
		serving.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: t.decide}
		t.serving = certmagic.New(t.cache, serving)
		t.serving.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(t.serving, template)}
	}
	return t, nil
}

// dnsProvider returns the libdns provider called name.
func dnsProvider(name, token string) (certmagic.DNSProvider, error) {
	switch strings.ToLower(name) {
	case "cloudflare":
		if token == "" {
			return nil, errors.New("tls: dns provider cloudflare: no API token")
		}
		return &cloudflare.Provider{APIToken: token}, nil
	case "":
		return nil, errors.New("tls: wildcard mode needs a DNS provider")
	}
	return nil, fmt.Errorf("tls: unknown DNS provider %q (known: cloudflare)", name)
}

// Mode returns TLSOnDemand or TLSWildcard.
func (t *TLS) Mode() string { return t.mode }

// Start begins managing certificates: the wildcard certificate in wildcard
// mode; in on-demand mode, pre-issuing each host that gets running
// backends. Work goes on in the background until Stop.
func (t *TLS) Start(ctx context.Context) error {
	ctx, t.stop = context.WithCancel(ctx)
	t.done = make(chan struct{})
	if t.mode == TLSWildcard {
		close(t.done)
		if err := t.manager.ManageAsync(ctx, []string{"*." + t.domain, t.domain}); err != nil {
			return fmt.Errorf("manage wildcard certificate for %s: %w", t.domain, err)
		}
		return nil
	}
	t.unsubscribe = t.routes.Subscribe(func(*Table) {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	})
	go t.preissue(ctx)
	return nil
}

// Stop ends certificate management.
func (t *TLS) Stop() {
	if t.unsubscribe != nil {
		t.unsubscribe()
	}
	if t.stop != nil {
		t.stop()
		<-t.done
	}
	t.cache.Stop()
}

// preissue keeps the managed set equal to the running hosts: new ones are
// managed (loaded from storage, else ordered), vanished ones are dropped
// from the cache (their files stay in storage for a redeploy).
func (t *TLS) preissue(ctx context.Context) {
	defer close(t.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		}
		tab := t.routes.Table()
		var add []string
		var drop []certmagic.SubjectIssuer
		t.mu.Lock()
		for _, r := range tab.Routes() {
			if r.Phase == PhaseRunning && !t.managed[r.Host] && t.underDomain(r.Host) {
				t.managed[r.Host] = true
				add = append(add, r.Host)
			}
		}
		for h := range t.managed {
			if r := tab.Lookup(h); r == nil || r.Phase == PhaseRemoving {
				delete(t.managed, h)
				drop = append(drop, certmagic.SubjectIssuer{Subject: h})
			}
		}
		t.mu.Unlock()
		if len(drop) > 0 {
			t.cache.RemoveManaged(drop)
		}
		if len(add) > 0 {
			t.log.Info("pre-issuing certificates", "hosts", add)
			if err := t.manager.ManageAsync(ctx, add); err != nil {
				t.log.Warn("manage certificates", "hosts", add, "err", err)
			}
		}
	}
}

// decide is the on-demand DecisionFunc: a certificate only for the domain
// itself and for hosts that have an environment now. No network calls.
func (t *TLS) decide(_ context.Context, name string) error {
	host := contract.NormalizeHost(name)
	if host == "" {
		return fmt.Errorf("no certificate for %q: not a host name", name)
	}
	if host == t.domain {
		return nil
	}
	if r := t.routes.Lookup(host); r != nil && r.Phase != PhaseRemoving && t.underDomain(host) {
		return nil
	}
	return fmt.Errorf("no certificate for %q: no environment", host)
}

// TLSConfig returns the configuration for the HTTPS listener: certificates
// from certmagic, HTTP/2 and HTTP/1.1.
func (t *TLS) TLSConfig() *tls.Config {
	c := t.serving.TLSConfig()
	c.NextProtos = []string{"h2", "http/1.1"}
	c.MinVersion = tls.VersionTLS12
	return c
}

// HandleHTTPChallenge answers an ACME HTTP-01 challenge request and
// reports whether r was one.
func (t *TLS) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return t.issuer.HandleHTTPChallenge(w, r)
}

// Covers reports whether a connection whose TLS server name is sni may
// carry a request for host (both normalized): in on-demand mode each host
// has its own certificate, so they must be equal; in wildcard mode any two
// names the wildcard covers may share a connection (HTTP/2 coalescing).
func (t *TLS) Covers(sni, host string) bool {
	if sni == host {
		return true
	}
	if t.mode != TLSWildcard {
		return false
	}
	return t.wildcardCovers(sni) && t.wildcardCovers(host)
}

// underDomain reports whether host is a subdomain of the preview domain.
func (t *TLS) underDomain(host string) bool {
	return strings.HasSuffix(host, "."+t.domain)
}

// wildcardCovers reports whether *.domain covers name (one label deep).
func (t *TLS) wildcardCovers(name string) bool {
	sub, ok := strings.CutSuffix(name, "."+t.domain)
	return ok && sub != "" && !strings.Contains(sub, ".")
}
