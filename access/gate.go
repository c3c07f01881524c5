package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// BypassHeader carries a bypass token (for test runners); BypassParam is
// the query parameter that redeems a bypass token or share link into a
// grant cookie and redirects to the clean URL.
const (
	BypassHeader = "X-Slipway-Bypass"
	BypassParam  = "slipway_bypass"
)

// previewPathPrefix is the part of every preview host that the gate
// answers itself (the password form); it never reaches a private preview.
const previewPathPrefix = "/.slipway/"

// Permissions answers "what is login's role on repo" from GitHub's
// collaborator-permission API: admin, maintain, write, triage, read or
// none.
type Permissions interface {
	Permission(ctx context.Context, repo, login string) (string, error)
}

// Tokens checks bypass tokens and share links (see Store).
type Tokens interface {
	// Redeem returns the live token whose secret is given.
	Redeem(secret string, now time.Time) (Token, bool)
	// Live returns the token with this ID while it is neither revoked nor
	// expired.
	Live(id string, now time.Time) (Token, bool)
}

// RepoAccess is one repository's access: its mode and, for password, the
// shared password.
type RepoAccess struct {
	Mode     Mode
	Password string
}

// Options configures a Gate.
type Options struct {
	// Domain is the preview domain: previews are its subdomains, the
	// control surface (sign-in) is the domain itself.
	Domain string
	// ControlURL is the control surface's base URL, e.g.
	// https://preview.example.com (no trailing slash).
	ControlURL string
	// Secure marks cookies Secure (Slipway serves TLS).
	Secure bool
	// Keys sign the cookies. Required.
	Keys *Keyring
	// Repos are the configured repositories (owner/name): a preview's
	// project name tells which one it belongs to.
	Repos []string
	// AccessFor returns a repository's access ("" for a project of no
	// configured repository: the global default). Required.
	AccessFor func(repo string) RepoAccess
	// Permissions answers for github mode; nil refuses every session.
	Permissions Permissions
	// Tokens checks bypass tokens and share links; nil accepts none.
	Tokens Tokens
	// OAuth is the GitHub OAuth client for sign-in on the control surface.
	OAuth OAuthClient
	// NoIndex adds X-Robots-Tag: noindex to every preview response.
	NoIndex bool
	// SessionTTL is how long a GitHub sign-in lasts. Default 12h.
	SessionTTL time.Duration
	// PasswordTTL is how long a password grant lasts. Default 7 days.
	PasswordTTL time.Duration
	// PermissionTTL is how long a user's permission on a repository is
	// cached: a user who loses access loses it within this time. Default 1m.
	PermissionTTL time.Duration
	// TrustedProxies are the proxies in front of Slipway (trusted_proxies):
	// behind them, a client's address is read from X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// Gate decides, for each request to a preview host, whether it reaches the
// preview. It satisfies proxy.Gate.
type Gate struct {
	opts   Options
	domain string
	now    func() time.Time
	log    *slog.Logger
	perms  *permCache
	scopes sync.Map // project → scope
	// verified caches cookies whose signature was checked (name + "=" +
	// value → claims), so the hot path does not verify the same cookie on
	// every request; expiry is still checked each time.
	verified      sync.Map
	verifiedCount atomic.Int64
	// wrongPasswords slows down guessing a shared password.
	wrongPasswords wrongPasswords
	// crossOrigin refuses password posts a browser says come from
	// another origin.
	crossOrigin *http.CrossOriginProtection
	// prefixes maps a project-name prefix (a configured repository's
	// project name without "-pr-<N>") to the repository.
	prefixes map[string]string
}

// scope is whose preview a project is.
type scope struct {
	// Repo is the configured repository (owner/name) or, for a project of
	// none, the project name without its "-pr-<N>" suffix.
	Repo   string
	Known  bool // Repo is a configured repository
	PR     int
	Access RepoAccess
	// grants are the names of the grant cookies for the repository and
	// for the pull request.
	grants [2]string
}

// New returns a Gate.
func New(opts Options) (*Gate, error) {
	if opts.Keys == nil {
		return nil, errors.New("access: no keys")
	}
	if opts.AccessFor == nil {
		return nil, errors.New("access: no AccessFor")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.PasswordTTL <= 0 {
		opts.PasswordTTL = 7 * 24 * time.Hour
	}
	if opts.PermissionTTL <= 0 {
		opts.PermissionTTL = time.Minute
	}
	opts.ControlURL = strings.TrimSuffix(opts.ControlURL, "/")
	g := &Gate{
		opts:        opts,
		domain:      strings.ToLower(strings.TrimSuffix(opts.Domain, ".")),
		now:         opts.Now,
		log:         opts.Logger,
		prefixes:    map[string]string{},
		crossOrigin: http.NewCrossOriginProtection(),
	}
	g.perms = newPermCache(opts.Permissions, opts.PermissionTTL, opts.Now, opts.Logger)
	for _, repo := range opts.Repos {
		owner, name, ok := strings.Cut(repo, "/")
		if !ok {
			continue
		}
		g.prefixes[strings.TrimSuffix(contract.ProjectName(owner, name, 1), "-pr-1")] = repo
	}
	return g, nil
}

// scopeOf returns whose preview project is (cached: projects are few).
func (g *Gate) scopeOf(project string) scope {
	if v, ok := g.scopes.Load(project); ok {
		return v.(scope)
	}
	sc := resolveScope(project, g.prefixes)
	if sc.Known {
		sc.Access = g.opts.AccessFor(sc.Repo)
	} else {
		sc.Access = g.opts.AccessFor("")
	}
	if sc.Access.Mode == "" {
		sc.Access.Mode = Public
	}
	sc.grants = [2]string{grantName(sc.Repo, 0), grantName(sc.Repo, sc.PR)}
	g.scopes.Store(project, sc)
	return sc
}

// opens reports whether t opens this scope's preview. A project of no
// configured repository (slipway up in local mode) is matched by the
// project name the token's repository gives.
func (sc scope) opens(t Token) bool {
	if sc.Known {
		return t.Opens(sc.Repo, sc.PR)
	}
	owner, name, ok := strings.Cut(t.Repo, "/")
	if !ok {
		return false
	}
	return strings.TrimSuffix(contract.ProjectName(owner, name, 1), "-pr-1") == sc.Repo && (t.PR == 0 || t.PR == sc.PR)
}

// resolveScope splits a project name "<prefix>-pr-<N>" and finds the
// configured repository of the prefix.
func resolveScope(project string, prefixes map[string]string) scope {
	i := strings.LastIndex(project, "-pr-")
	if i < 0 {
		return scope{Repo: project}
	}
	n, err := strconv.Atoi(project[i+len("-pr-"):])
	if err != nil || n <= 0 {
		return scope{Repo: project}
	}
	prefix := project[:i]
	if repo, ok := prefixes[prefix]; ok {
		return scope{Repo: repo, Known: true, PR: n}
	}
	return scope{Repo: prefix, PR: n}
}

// Admit decides whether r, for a host of project ("" for a host with no
// environment), goes on to the preview: it returns 0 to let it go on, or
// the status it answered r with itself (sign-in redirect, password form,
// refusal). It strips Slipway's credentials from r either way.
func (g *Gate) Admit(w http.ResponseWriter, r *http.Request, project string) int {
	if g.opts.NoIndex {
		w.Header()["X-Robots-Tag"] = noindex
	}
	if project == "" {
		stripCredentials(r)
		stripBypassParam(r)
		return 0
	}
	sc := g.scopeOf(project)
	if sc.Access.Mode == Public {
		stripCredentials(r)
		stripBypassParam(r)
		return 0
	}
	if strings.HasPrefix(r.URL.Path, previewPathPrefix) {
		stripCredentials(r)
		return g.servePreviewPath(w, r, sc)
	}
	if mayCarryBypass(r.URL.RawQuery) {
		if status := g.redeemParam(w, r, sc); status != 0 {
			stripCredentials(r)
			return status
		}
	}
	ev := g.evidence(r, sc)
	v := decide(sc.Access.Mode, ev)
	if v == needPermission {
		ev.Permission = g.permission(r.Context(), ev.login, sc)
		for _, login := range ev.others {
			if ev.Permission == permAllowed {
				break
			}
			if p := g.permission(r.Context(), login, sc); p == permAllowed {
				ev.Permission, ev.login = p, login
			}
		}
		v = decide(sc.Access.Mode, ev)
	}
	stripCredentials(r)
	switch v {
	case admit:
		return 0
	case signIn:
		http.Redirect(w, r, g.opts.ControlURL+LoginPath+"?next="+url.QueryEscape(g.previewURL(r)), http.StatusFound)
		return http.StatusFound
	case askPassword:
		writePage(w, http.StatusUnauthorized, passwordPage, pageData{Repo: sc.Repo, Next: r.URL.RequestURI()})
		return http.StatusUnauthorized
	case refuseBypass:
		http.Error(w, "slipway: the "+BypassHeader+" token is not valid for this preview (revoked, expired or for another repository)", http.StatusUnauthorized)
		return http.StatusUnauthorized
	case unavailable:
		writePage(w, http.StatusServiceUnavailable, unavailablePage, pageData{Repo: sc.Repo})
		return http.StatusServiceUnavailable
	}
	writePage(w, http.StatusForbidden, refusedPage, pageData{Repo: sc.Repo, Login: ev.login, SignOut: g.opts.ControlURL + LogoutPath})
	return http.StatusForbidden
}

var noindex = []string{"noindex"}

// evidence gathers what r carries for sc, verifying each credential.
func (g *Gate) evidence(r *http.Request, sc scope) evidence {
	now := g.now()
	var ev evidence
	if secret := r.Header.Get(BypassHeader); secret != "" {
		ev.Bypass = invalid
		if t, ok := g.redeem(secret, now); ok && sc.opens(t) {
			ev.Bypass = valid
		}
	}
	ev.Grant = g.grant(r, sc, now)
	if sc.Access.Mode == GitHub {
		if logins, sent := g.sessions(r); len(logins) > 0 {
			ev.Session, ev.login, ev.others = valid, logins[0], logins[1:]
		} else if sent {
			ev.Session = invalid
		}
	}
	return ev
}

// maxVerified bounds the verified-cookie cache; it is emptied when full.
const maxVerified = 10000

// open verifies a cookie of Slipway's, from the cache when it was verified before.
func (g *Gate) open(name, value string, now time.Time) (claims, bool) {
	key := name + "=" + value
	if v, ok := g.verified.Load(key); ok {
		c := v.(claims)
		return c, c.Expires > now.Unix()
	}
	c, ok := g.opts.Keys.open(name, value, now)
	if !ok {
		return claims{}, false
	}
	if g.verifiedCount.Add(1) > maxVerified {
		g.verified.Clear()
		g.verifiedCount.Store(1)
	}
	g.verified.Store(key, c)
	return c, true
}

// grant checks the grant cookies for sc's repository and pull request.
func (g *Gate) grant(r *http.Request, sc scope, now time.Time) credential {
	verdict := absent
	for i, pr := range [2]int{0, sc.PR} {
		name := sc.grants[i]
		good := false
		sent := eachCookie(r, name, func(v string) bool {
			good = g.grants(name, v, pr, sc, now)
			return good
		})
		if good {
			return valid
		}
		if sent {
			verdict = invalid
		}
	}
	return verdict
}

// grants reports whether the grant cookie name=v opens sc for pull request
// pr (0 for the repository's every preview).
func (g *Gate) grants(name, v string, pr int, sc scope, now time.Time) bool {
	c, ok := g.open(name, v, now)
	if !ok || !strings.EqualFold(c.Repo, sc.Repo) || c.PR != pr {
		return false
	}
	switch c.Kind {
	case kindPassword:
		return sc.Access.Mode == Password && sc.Access.Password != "" &&
			g.opts.Keys.passwordMatches(c.Password, sc.Repo, sc.Access.Password)
	case kindToken:
		t, ok := g.live(c.Token, now)
		return ok && sc.opens(t)
	}
	return false
}

// sessions returns the GitHub users of the valid sessions r carries, in
// the order sent, and whether it carried a session cookie at all.
func (g *Gate) sessions(r *http.Request) (logins []string, sent bool) {
	now := g.now()
	sent = eachCookie(r, SessionCookie, func(v string) bool {
		c, ok := g.open(SessionCookie, v, now)
		if ok && c.Kind == kindSession && c.Login != "" && !slices.Contains(logins, c.Login) {
			logins = append(logins, c.Login)
		}
		return false
	})
	return logins, sent
}

// permission asks the cache whether login may read sc's repository.
func (g *Gate) permission(ctx context.Context, login string, sc scope) permission {
	if login == "" || !sc.Known {
		return permDenied // a project of no configured repository has no one to ask about
	}
	return g.perms.check(ctx, sc.Repo, login)
}

func (g *Gate) redeem(secret string, now time.Time) (Token, bool) {
	if g.opts.Tokens == nil {
		return Token{}, false
	}
	return g.opts.Tokens.Redeem(secret, now)
}

func (g *Gate) live(id string, now time.Time) (Token, bool) {
	if g.opts.Tokens == nil || id == "" {
		return Token{}, false
	}
	return g.opts.Tokens.Live(id, now)
}

// previewURL is the URL r asked for.
func (g *Gate) previewURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || g.opts.Secure {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// cookieDomain is the Domain attribute of cookies for every preview host.
func (g *Gate) cookieDomain() string {
	if g.domain == "localhost" {
		return "" // browsers refuse Domain=localhost: host-only cookies there
	}
	return g.domain
}

// hashSecret is how token secrets are stored and looked up.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
