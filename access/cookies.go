package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Cookie names. Every cookie whose name starts with CookiePrefix is
// Slipway's and is removed from requests before they reach a preview.
const (
	CookiePrefix = contract.CookiePrefix
	// SessionCookie holds a GitHub sign-in, for the whole preview domain.
	SessionCookie = CookiePrefix + "session"
	// grantPrefix starts the name of a grant cookie: access to one
	// repository's previews (password, bypass token) or one pull request's
	// (share link), named after what it grants so that grants for
	// different previews live side by side.
	grantPrefix = CookiePrefix + "grant_"
	// stateCookie carries the OAuth state between /auth/login and
	// /auth/callback on the control surface.
	stateCookie = CookiePrefix + "oauth_state"
)

// Kinds of claims.
const (
	kindSession  = "session"
	kindPassword = "password"
	kindToken    = "token"
	kindState    = "state"
)

// claims are what a cookie of Slipway's says, signed by the Keyring.
type claims struct {
	Kind string `json:"k"`
	// Login and UserID: the GitHub user of a session.
	Login  string `json:"u,omitempty"`
	UserID int64  `json:"i,omitempty"`
	// Repo (owner/name, or the project's scope in local mode) and PR (share
	// links only) that a grant opens.
	Repo string `json:"r,omitempty"`
	PR   int    `json:"p,omitempty"`
	// Token is the ID of the bypass token or share link a grant came from;
	// it is checked against the store on each request, so revoking it ends
	// the grant.
	Token string `json:"t,omitempty"`
	// Password is a keyed fingerprint of the password a grant was given
	// for: a changed password ends it.
	Password string `json:"w,omitempty"`
	// State and Next: the OAuth state and where to go after sign-in.
	State string `json:"s,omitempty"`
	Next  string `json:"n,omitempty"`
	// Expires is the Unix time the cookie stops being valid.
	Expires int64 `json:"e"`
}

// grantName is the grant cookie's name for repo (pr 0) or one pull request.
func grantName(repo string, pr int) string {
	s := strings.ToLower(repo)
	if pr > 0 {
		s += "#" + strconv.Itoa(pr)
	}
	sum := sha256.Sum256([]byte(s))
	return grantPrefix + hex.EncodeToString(sum[:6])
}

// passwordFingerprint ties a password grant to the password it was given
// for, keyed by the newest key.
func (k *Keyring) passwordFingerprint(repo, password string) string {
	return fingerprint(k.deriveWith(0, "password fingerprint"), repo, password)
}

// passwordMatches reports whether fp is password's fingerprint under any
// key that still verifies, so that a grant outlives a key rotation as the
// cookie carrying it does.
func (k *Keyring) passwordMatches(fp, repo, password string) bool {
	for i := range k.keys {
		if subtle.ConstantTimeCompare([]byte(fp), []byte(fingerprint(k.deriveWith(i, "password fingerprint"), repo, password))) == 1 {
			return true
		}
	}
	return false
}

func fingerprint(key []byte, repo, password string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.ToLower(repo)))
	m.Write([]byte{0})
	m.Write([]byte(password))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// cookieFor returns a cookie of Slipway's valid until exp, as of now.
// domain "" makes a host-only cookie.
func cookieFor(name, value, domain, path string, secure bool, now, exp time.Time) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Domain: domain, Path: path,
		Expires: exp, MaxAge: int(exp.Sub(now).Seconds()),
		Secure: secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}

// expiredCookie removes a cookie.
func expiredCookie(name, domain, path string, secure bool) *http.Cookie {
	return &http.Cookie{Name: name, Value: "", Domain: domain, Path: path, MaxAge: -1, Secure: secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// findCookie returns the value of the first cookie named name in r, without
// parsing the others.
func findCookie(r *http.Request, name string) (string, bool) {
	var found string
	sent := eachCookie(r, name, func(v string) bool { found = v; return true })
	return found, sent
}

// eachCookie calls fn with the value of every cookie named name in r, in
// the order sent, until fn returns true; it reports whether r had one.
// A request can carry several cookies of one name: a preview's page can
// set slipway_session for the whole domain, or for a longer path, which
// the browser sends before Slipway's own. Trying each means such a cookie
// cannot shadow the real one. Only the first maxSameName are tried: each
// costs a signature check, and a request is not to buy thousands.
func eachCookie(r *http.Request, name string, fn func(value string) bool) bool {
	tried := 0
	for _, line := range r.Header["Cookie"] {
		for line != "" && tried < maxSameName {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if ok && k == name {
				tried++
				if fn(strings.Trim(v, `"`)) {
					return true
				}
			}
		}
	}
	return tried > 0
}

// maxSameName bounds the cookies of one name eachCookie tries.
const maxSameName = 8

// stripCredentials removes Slipway's cookies and bypass header from r's
// headers, leaving every other cookie as the client sent it.
func stripCredentials(r *http.Request) {
	if _, ok := r.Header[BypassHeader]; ok {
		delete(r.Header, BypassHeader)
	}
	lines, ok := r.Header["Cookie"]
	if !ok {
		return
	}
	dirty := false
	for _, l := range lines {
		if strings.Contains(l, CookiePrefix) {
			dirty = true
			break
		}
	}
	if !dirty {
		return
	}
	var kept []string
	for _, line := range lines {
		for _, part := range strings.Split(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" || strings.HasPrefix(p, CookiePrefix) {
				continue
			}
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		delete(r.Header, "Cookie")
		return
	}
	r.Header["Cookie"] = []string{strings.Join(kept, "; ")}
}
