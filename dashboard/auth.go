package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// role is what a request may do.
type role int

const (
	roleNone     role = iota
	roleViewer        // read-only pages and API (Options.Public)
	roleOperator      // everything: logs, actions
)

// principal is who made a request, as far as the dashboard can tell.
type principal struct {
	role role
	// kind is how the request authenticated: "token" (bearer header),
	// "session" (login cookie), "local" (Options.Insecure on loopback),
	// "public", or "".
	kind string
	// user is the session's user name, "" for token logins.
	user string
	// csrf is the token forms must carry; "" when the principal cannot
	// act through forms.
	csrf string
}

// bearer reports whether the request carried the API token in its
// Authorization header: no ambient credentials, so no CSRF check.
func (p principal) bearer() bool { return p.kind == "token" }

// session is the signed content of the session cookie.
type session struct {
	// User logged in with a password; empty for a token login.
	User string `json:"u,omitempty"`
	// Kind is "password" or "token".
	Kind string `json:"k"`
	// Expires is a Unix time.
	Expires int64 `json:"e"`
	// Nonce makes every session distinct; CSRF tokens are bound to it.
	Nonce string `json:"n"`
}

const sessionCookie = "slipway_session"

var errBadCredentials = errors.New("invalid credentials")

// authenticator checks credentials and signs sessions and CSRF tokens.
type authenticator struct {
	token, user, password string
	public, publicLogs    bool
	insecure              bool
	sessionKey, csrfKey   []byte
	ttl                   time.Duration
	now                   func() time.Time
	cookiePath            string
	secureCookies         bool
	limiter               *loginLimiter
}

func newAuthenticator(o *Options, master []byte, cookiePath string, secure bool) *authenticator {
	// Keys depend on the credentials, so changing the password or the
	// token ends every session signed before.
	fp := sha256.Sum256([]byte(o.User + "\x00" + o.Password + "\x00" + o.Token))
	return &authenticator{
		token: o.Token, user: o.User, password: o.Password,
		public: o.Public, publicLogs: o.PublicLogs, insecure: o.Insecure,
		sessionKey:    mac(master, "session\x00"+string(fp[:])),
		csrfKey:       mac(master, "csrf\x00"+string(fp[:])),
		ttl:           o.SessionTTL,
		now:           o.Now,
		cookiePath:    cookiePath,
		secureCookies: secure,
		limiter:       &loginLimiter{max: 10, window: time.Minute, now: o.Now, failures: map[string]*failureWindow{}},
	}
}

// configured reports whether any credential is set.
func (a *authenticator) configured() bool { return a.token != "" || a.user != "" }

// loginEnabled reports whether the login form can succeed.
func (a *authenticator) loginEnabled() bool { return a.configured() }

// identify tells who made r. A request with an Authorization header that
// does not carry the right token is refused outright (errBadCredentials),
// even on a public dashboard, so a mistyped token is not silently ignored.
func (a *authenticator) identify(r *http.Request) (principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || !secretEqual(strings.TrimSpace(tok), a.token) {
			return principal{}, errBadCredentials
		}
		return principal{role: roleOperator, kind: "token"}, nil
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if s, ok := a.verifySession(c.Value); ok {
			return principal{role: roleOperator, kind: "session", user: s.User, csrf: a.csrfFor("s\x00" + s.Nonce)}, nil
		}
	}
	if a.insecure && !a.configured() && isLoopback(r.RemoteAddr) {
		return principal{role: roleOperator, kind: "local", csrf: a.csrfFor("local")}, nil
	}
	if a.public {
		return principal{role: roleViewer, kind: "public"}, nil
	}
	return principal{}, nil
}

// canReadLogs reports whether p may read service and build logs: they may
// hold whatever the services print, so a public dashboard shows them only
// with Options.PublicLogs.
func (a *authenticator) canReadLogs(p principal) bool {
	return p.role >= roleOperator || (p.role == roleViewer && a.publicLogs)
}

// checkCSRF verifies the token of a state-changing request made with
// ambient credentials (session cookie, or loopback in insecure mode).
func (a *authenticator) checkCSRF(p principal, got string) bool {
	if p.bearer() {
		return true
	}
	return p.csrf != "" && got != "" && hmac.Equal([]byte(got), []byte(p.csrf))
}

func (a *authenticator) csrfFor(subject string) string {
	return base64.RawURLEncoding.EncodeToString(mac(a.csrfKey, subject))
}

// login checks a user and password, or the token, and returns the new
// session on success.
func (a *authenticator) login(user, password, token string) (session, bool) {
	s := session{Expires: a.now().Add(a.ttl).Unix(), Nonce: randomString(16)}
	switch {
	case token != "":
		if !secretEqual(token, a.token) {
			return session{}, false
		}
		s.Kind = "token"
	default:
		// Both compared, always, so timing tells nothing about which was wrong.
		okUser := secretEqual(user, a.user)
		okPass := secretEqual(password, a.password)
		if !okUser || !okPass {
			return session{}, false
		}
		s.Kind, s.User = "password", a.user
	}
	return s, true
}

func (a *authenticator) signSession(s session) string {
	payload, _ := json.Marshal(s)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(a.sessionKey, p))
}

func (a *authenticator) verifySession(v string) (session, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(a.sessionKey, p)) {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return session{}, false
	}
	var s session
	if err := json.Unmarshal(raw, &s); err != nil || s.Nonce == "" {
		return session{}, false
	}
	if a.now().Unix() >= s.Expires {
		return session{}, false
	}
	switch s.Kind {
	case "token":
		return s, a.token != ""
	case "password":
		return s, a.user != "" && secretEqual(s.User, a.user)
	}
	return session{}, false
}

// sessionCookieFor is the cookie carrying s (or, with a zero s, deleting it).
func (a *authenticator) sessionCookieFor(r *http.Request, s *session) *http.Cookie {
	c := &http.Cookie{
		Name:     sessionCookie,
		Path:     a.cookiePath,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   a.secureCookies || r.TLS != nil,
	}
	if s == nil {
		c.MaxAge = -1
		return c
	}
	c.Value = a.signSession(*s)
	c.Expires = time.Unix(s.Expires, 0)
	c.MaxAge = int(c.Expires.Sub(a.now()).Seconds())
	if c.MaxAge <= 0 {
		c.MaxAge = int(a.ttl.Seconds())
	}
	return c
}

// secretEqual compares a presented secret with the configured one in
// constant time (over their SHA-256 digests, so the length leaks nothing
// either). An empty configured secret never matches.
func secretEqual(presented, configured string) bool {
	pd := sha256.Sum256([]byte(presented))
	cd := sha256.Sum256([]byte(configured))
	match := subtle.ConstantTimeCompare(pd[:], cd[:]) == 1
	return match && configured != ""
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// isLoopback reports whether a RemoteAddr is a loopback address.
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// clientIP is the address login attempts are counted against.
func clientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// safeNext returns next when it is a path under base on this server, else
// base: the login form must not redirect anywhere else.
func safeNext(next, base string) string {
	if next == "" || !strings.HasPrefix(next, base) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return base
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return base
	}
	return next
}

// loginLimiter refuses logins from an address after max failures within
// window.
type loginLimiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	now      func() time.Time
	failures map[string]*failureWindow
}

type failureWindow struct {
	start time.Time
	n     int
}

const maxTrackedAddresses = 10000

func (l *loginLimiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.failures[ip]
	if f == nil {
		return true
	}
	if l.now().Sub(f.start) >= l.window {
		delete(l.failures, ip)
		return true
	}
	return f.n < l.max
}

func (l *loginLimiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.failures) >= maxTrackedAddresses {
		for k, f := range l.failures {
			if now.Sub(f.start) >= l.window {
				delete(l.failures, k)
			}
		}
		if len(l.failures) >= maxTrackedAddresses {
			clear(l.failures)
		}
	}
	f := l.failures[ip]
	if f == nil || now.Sub(f.start) >= l.window {
		f = &failureWindow{start: now}
		l.failures[ip] = f
	}
	f.n++
}

func (l *loginLimiter) succeed(ip string) {
	l.mu.Lock()
	delete(l.failures, ip)
	l.mu.Unlock()
}
