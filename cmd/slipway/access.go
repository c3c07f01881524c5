package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/access"
	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
)

// keyRotation is how often the access cookies' signing key is replaced;
// the previous key verifies until the longest cookie it signed expires.
const (
	keyRotation = 30 * 24 * time.Hour
	keyKeep     = 31 * 24 * time.Hour
)

// ghPermissions answers the gate's permission questions with the GitHub
// client, once buildController has made it (nil before: every session
// refused). With access_team, a user outside the organisation or team has
// no access whatever their role.
type ghPermissions struct {
	c   *gh.Client
	cfg *config.Controller
}

func (p *ghPermissions) Permission(ctx context.Context, repo, login string) (string, error) {
	if p.c == nil {
		return "none", nil
	}
	r, err := gh.ParseRepo(repo)
	if err != nil {
		return "", err
	}
	perm, err := p.c.Permission(ctx, r, login)
	if err != nil || perm == gh.PermissionNone {
		return string(perm), err
	}
	if team := p.cfg.AccessFor(repo).Team; team != "" {
		org, slug, _ := strings.Cut(team, "/")
		ok, err := p.c.Member(ctx, r, org, slug, login)
		if err != nil {
			return "", err
		}
		if !ok {
			return string(gh.PermissionNone), nil
		}
	}
	return string(perm), nil
}

// privatePreviews reports whether any repository's previews (or the
// global default) are not public.
func privatePreviews(cfg *config.Controller) bool {
	if cfg.Access != config.AccessPublic {
		return true
	}
	for _, r := range cfg.Repos {
		if cfg.AccessFor(r.Name).Mode != config.AccessPublic {
			return true
		}
	}
	return false
}

// buildGate makes the access gate in front of the previews: with every
// preview public it only strips Slipway's cookies and adds noindex, and
// keeps no state; otherwise its keys and tokens live under state_dir.
// trusted are the proxies in front of Slipway (trusted_proxies).
func (p *parts) buildGate(trusted []netip.Prefix) error {
	cfg := p.cfg
	opts := access.Options{
		Domain: cfg.Domain, ControlURL: p.hosts.URL(cfg.Domain), Secure: cfg.TLS.Mode != config.TLSOff,
		NoIndex: cfg.NoIndex, Logger: p.log, Permissions: p.permissions, TrustedProxies: trusted,
		AccessFor: func(repo string) access.RepoAccess {
			a := cfg.AccessFor(repo)
			return access.RepoAccess{Mode: access.Mode(a.Mode), Password: a.Password}
		},
	}
	for _, r := range cfg.Repos {
		opts.Repos = append(opts.Repos, r.Name)
	}
	if cfg.GitHub != nil {
		opts.OAuth = access.OAuthClient{ClientID: cfg.GitHub.OAuth.ClientID, ClientSecret: cfg.GitHub.OAuth.ClientSecret,
			WebURL: cfg.GitHub.OAuth.WebURL, APIURL: cfg.GitHub.APIURL}
	}
	var err error
	if !privatePreviews(cfg) {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		opts.Keys, _ = access.NewKeyring(secret) // signs nothing: every preview is public
	} else {
		if opts.Keys, err = access.LoadKeyring(filepath.Join(cfg.StateDir, "access-keys.json"), time.Now(), keyRotation, keyKeep); err != nil {
			return fmt.Errorf("private previews: %w", err)
		}
		st, err := access.OpenStore(filepath.Join(cfg.StateDir, access.TokensFileName), nil)
		if err != nil {
			return fmt.Errorf("private previews: %w", err)
		}
		p.closers = append(p.closers, func() { st.Close() })
		p.tokens, opts.Tokens = st, st
	}
	p.gate, err = access.New(opts)
	return err
}

// shareLinks makes "/slipway share" links in the token store.
type shareLinks struct {
	cfg    *config.Controller
	tokens *access.Store
}

func (s shareLinks) Share(ctx context.Context, repo string, pr int, ttl time.Duration, by string) (string, time.Time, bool, error) {
	if s.cfg.AccessFor(repo).Mode == config.AccessPublic {
		return "", time.Time{}, true, nil
	}
	if s.tokens == nil {
		return "", time.Time{}, false, fmt.Errorf("no token store")
	}
	t, secret, err := s.tokens.Create(ctx, access.NewToken{Kind: access.KindShare, Repo: repo, PR: pr, TTL: ttl, CreatedBy: by, Note: "/slipway share"})
	return secret, t.Expires, false, err
}

// registerAccessAPI serves the token API on the control surface.
func (p *parts) registerAccessAPI() {
	cfg := p.cfg
	api := &access.API{
		Store: p.tokens, Token: cfg.Dashboard.Token, Logger: p.log,
		Public:     func(repo string) bool { return cfg.AccessFor(repo).Mode == config.AccessPublic },
		Configured: func(repo string) bool { _, ok := cfg.Repo(repo); return ok || len(cfg.Repos) == 0 },
	}
	api.Register(p.mux)
}

// hostKey returns the key of hostname: random, kept in state_dir (made on
// first use, never rotated: every preview's host would change); nil
// without hostname: random.
func hostKey(cfg *config.Controller) ([]byte, error) {
	if cfg.Hostname != config.HostnameRandom {
		return nil, nil
	}
	path := filepath.Join(cfg.StateDir, "hostname.key")
	if b, err := os.ReadFile(path); err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("hostname: random: %s holds %d bytes, want 32", path, len(b))
		}
		return b, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("hostname: random: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("hostname: random: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // made by another process meanwhile
			return hostKey(cfg)
		}
		return nil, fmt.Errorf("hostname: random: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(key); err != nil {
		return nil, fmt.Errorf("hostname: random: %w", err)
	}
	return key, nil
}

// accessNote is what the dashboard says about public previews ("" when
// every preview is private).
func accessNote(cfg *config.Controller) string {
	public := cfg.PublicPreviews()
	switch {
	case len(public) == 0:
		return ""
	case public[0] == "*" && len(cfg.Repos) == 0:
		return "Previews are public: anyone who knows or guesses a preview's host can open it (access: public; see docs/access.md)."
	case public[0] == "*":
		public = public[1:]
	}
	if len(public) == 0 {
		return ""
	}
	return "Previews of " + strings.Join(public, ", ") + " are public: anyone who knows or guesses their host can open them (see docs/access.md)."
}
