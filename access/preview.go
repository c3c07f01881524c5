package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// passwordPath is the password form's address on every preview host.
const passwordPath = previewPathPrefix + "password"

// maxFormBytes bounds the password form.
const maxFormBytes = 4 << 10

// servePreviewPath answers the gate's own paths on a private preview's host.
func (g *Gate) servePreviewPath(w http.ResponseWriter, r *http.Request, sc scope) int {
	if r.URL.Path != passwordPath || sc.Access.Mode != Password {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writePage(w, http.StatusOK, passwordPage, pageData{Repo: sc.Repo, Next: safePath(r.URL.Query().Get("next"))})
		return http.StatusOK
	case http.MethodPost:
		return g.checkPassword(w, r, sc)
	}
	w.Header().Set("Allow", "GET, POST")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return http.StatusMethodNotAllowed
}

// checkPassword takes the form: the right password gets a grant cookie for
// the repository's previews and goes on to next (a path on this host).
func (g *Gate) checkPassword(w http.ResponseWriter, r *http.Request, sc scope) int {
	// Only the form on this very host posts a password: another site, or
	// another preview's page, must not be able to make a visitor's browser
	// post wrong ones and lock its address out.
	if err := g.crossOrigin.Check(r); err != nil {
		http.Error(w, "a password is accepted only from this preview's own form", http.StatusForbidden)
		return http.StatusForbidden
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return http.StatusBadRequest
	}
	next := safePath(r.PostForm.Get("next"))
	now := g.now()
	client := passwordClient(r, sc.Repo, g.opts.TrustedProxies)
	if wait := g.wrongPasswords.wait(client, sc.Repo, now); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second).Seconds())))
		writePage(w, http.StatusTooManyRequests, passwordPage, pageData{Repo: sc.Repo, Next: next, Error: "Too many wrong passwords. Try again in a few minutes."})
		return http.StatusTooManyRequests
	}
	got := sha256.Sum256([]byte(r.PostForm.Get("password")))
	want := sha256.Sum256([]byte(sc.Access.Password))
	if sc.Access.Password == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		if g.wrongPasswords.wrong(client, sc.Repo, now) {
			g.log.Warn("too many wrong preview passwords: the form refuses this client for a while", "repo", sc.Repo, "client", client, "for", wrongPasswordWindow)
		}
		g.log.Info("wrong preview password", "repo", sc.Repo, "remote", r.RemoteAddr)
		writePage(w, http.StatusUnauthorized, passwordPage, pageData{Repo: sc.Repo, Next: next, Error: "Wrong password."})
		return http.StatusUnauthorized
	}
	exp := now.Add(g.opts.PasswordTTL)
	name := grantName(sc.Repo, 0)
	c := claims{Kind: kindPassword, Repo: sc.Repo, Password: g.opts.Keys.passwordFingerprint(sc.Repo, sc.Access.Password), Expires: exp.Unix()}
	http.SetCookie(w, cookieFor(name, g.opts.Keys.seal(name, c), g.cookieDomain(), "/", g.opts.Secure, now, exp))
	http.Redirect(w, r, next, http.StatusSeeOther)
	return http.StatusSeeOther
}

// redeemParam turns a bypass token or share link in the query into a
// grant cookie and redirects to the URL without it. It reports whether it
// answered r (its status, else 0); a request it did not answer goes on
// with the parameter removed from its query.
func (g *Gate) redeemParam(w http.ResponseWriter, r *http.Request, sc scope) int {
	q := r.URL.Query()
	secret, sent := q.Get(BypassParam), q.Has(BypassParam)
	if !sent {
		return 0
	}
	q.Del(BypassParam)
	clean := r.URL.EscapedPath()
	if enc := q.Encode(); enc != "" {
		clean += "?" + enc
	}
	r.URL.RawQuery = q.Encode()
	r.RequestURI = clean
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return 0 // only a page load redeems; the parameter never goes on
	}
	now := g.now()
	t, ok := g.redeem(secret, now)
	if !ok || !sc.opens(t) {
		g.log.Info("refused a bypass token or share link", "repo", sc.Repo, "pr", sc.PR, "remote", r.RemoteAddr)
		writePage(w, http.StatusUnauthorized, linkRefusedPage, pageData{Repo: sc.Repo})
		return http.StatusUnauthorized
	}
	exp := t.Expires
	if exp.IsZero() || exp.Sub(now) > maxGrantTTL {
		exp = now.Add(maxGrantTTL)
	}
	name := grantName(sc.Repo, t.PR)
	c := claims{Kind: kindToken, Repo: sc.Repo, PR: t.PR, Token: t.ID, Expires: exp.Unix()}
	http.SetCookie(w, cookieFor(name, g.opts.Keys.seal(name, c), g.cookieDomain(), "/", g.opts.Secure, now, exp))
	http.Redirect(w, r, clean, http.StatusFound)
	return http.StatusFound
}

// maxGrantTTL bounds a grant cookie from a token; the token itself is
// checked on every request anyway.
const maxGrantTTL = 30 * 24 * time.Hour

// safePath keeps a redirect on the same host: an absolute path that is not
// protocol-relative ("//evil", "/\evil") and not the gate's own; anything
// else is "/".
func safePath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, `/\`) ||
		strings.ContainsAny(p, "\r\n\t") || strings.HasPrefix(p, previewPathPrefix) {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return p
}

// stripBypassParam removes the bypass parameter from r's query, leaving
// the rest as sent.
func stripBypassParam(r *http.Request) {
	if !mayCarryBypass(r.URL.RawQuery) {
		return
	}
	q := r.URL.Query()
	if !q.Has(BypassParam) {
		return
	}
	q.Del(BypassParam)
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
}

// mayCarryBypass reports whether a raw query may hold the bypass
// parameter: as written, or with any of its characters percent-encoded
// (which the query's parser, and the preview's, decode).
func mayCarryBypass(rawQuery string) bool {
	return strings.Contains(rawQuery, BypassParam) || strings.IndexByte(rawQuery, '%') >= 0
}
