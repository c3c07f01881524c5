package access

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OAuthClient is the GitHub OAuth client (of a GitHub App or OAuth App)
// that people sign in with.
type OAuthClient struct {
	ClientID     string
	ClientSecret string
	// WebURL is where people sign in (https://github.com/).
	WebURL string
	// APIURL is the REST API base (https://api.github.com/), for GET /user.
	APIURL string
	// HTTP makes the calls to GitHub; default a client with a 10s timeout.
	HTTP *http.Client
}

// stateTTL bounds the time between /auth/login and /auth/callback.
const stateTTL = 10 * time.Minute

// Paths of the sign-in on the control surface.
const (
	LoginPath    = "/auth/login"
	CallbackPath = "/auth/callback"
	LogoutPath   = "/auth/logout"
)

// Register adds the sign-in endpoints to the control surface's mux.
func (g *Gate) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LoginPath, g.login)
	mux.HandleFunc("GET "+CallbackPath, g.callback)
	mux.HandleFunc("GET "+LogoutPath, g.logout)
}

// login starts GitHub's web flow: a random state, bound to this browser by
// a signed cookie, and a redirect to GitHub's authorize page.
func (g *Gate) login(w http.ResponseWriter, r *http.Request) {
	if g.opts.OAuth.ClientID == "" {
		writePage(w, http.StatusNotFound, errorPage, pageData{Error: "Sign-in with GitHub is not configured (github.oauth)."})
		return
	}
	next := g.safeNext(r.URL.Query().Get("next"))
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	state := b64.EncodeToString(raw)
	now := g.now()
	exp := now.Add(stateTTL)
	c := claims{Kind: kindState, State: state, Next: next, Expires: exp.Unix()}
	name, path := g.stateCookie()
	http.SetCookie(w, cookieFor(name, g.opts.Keys.seal(name, c), "", path, g.opts.Secure, now, exp))
	q := url.Values{
		"client_id":    {g.opts.OAuth.ClientID},
		"redirect_uri": {g.opts.ControlURL + CallbackPath},
		"state":        {state},
		"allow_signup": {"false"},
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, strings.TrimSuffix(g.opts.OAuth.WebURL, "/")+"/login/oauth/authorize?"+q.Encode(), http.StatusFound)
}

// stateCookie is the name and path of the cookie that binds a sign-in's
// state to the browser. With TLS it is __Host- prefixed (Secure, Path=/,
// no Domain): a browser sets such a cookie only from the control host
// itself, so a preview's page cannot plant its own state (with
// Domain=<domain>) for the control host and sign a visitor in as someone
// else (login CSRF).
func (g *Gate) stateCookie() (name, path string) {
	if g.opts.Secure {
		return "__Host-" + stateCookie, "/"
	}
	return stateCookie, "/auth/"
}

// callback ends the web flow: the state must be the one this browser was
// given, the code is exchanged for a user token, the user is read, and
// the browser gets a session cookie for every preview host.
func (g *Gate) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, path := g.stateCookie()
	http.SetCookie(w, expiredCookie(name, "", path, g.opts.Secure))
	var st claims
	now := g.now()
	ok := false
	eachCookie(r, name, func(v string) bool {
		st, ok = g.opts.Keys.open(name, v, now)
		ok = ok && st.Kind == kindState && st.State != "" &&
			subtle.ConstantTimeCompare([]byte(st.State), []byte(q.Get("state"))) == 1
		return ok
	})
	if !ok {
		writePage(w, http.StatusBadRequest, errorPage, pageData{Error: "The sign-in was not started in this browser, or took too long. Open the preview again to sign in."})
		return
	}
	if e := q.Get("error"); e != "" {
		writePage(w, http.StatusForbidden, errorPage, pageData{Error: "GitHub did not sign you in: " + e + "."})
		return
	}
	code := q.Get("code")
	if code == "" {
		writePage(w, http.StatusBadRequest, errorPage, pageData{Error: "GitHub sent no code."})
		return
	}
	user, err := g.exchange(r.Context(), code)
	if err != nil {
		g.log.Warn("GitHub sign-in failed", "err", err)
		writePage(w, http.StatusBadGateway, errorPage, pageData{Error: "GitHub could not complete the sign-in. Try again."})
		return
	}
	http.SetCookie(w, g.Session(user.Login, user.ID))
	g.log.Info("signed in with GitHub", "user", user.Login)
	http.Redirect(w, r, g.safeNext(st.Next), http.StatusFound)
}

// Session returns a signed session cookie for a GitHub user, valid for
// SessionTTL on every preview host (what a sign-in sets).
func (g *Gate) Session(login string, id int64) *http.Cookie {
	now := g.now()
	exp := now.Add(g.opts.SessionTTL)
	c := claims{Kind: kindSession, Login: login, UserID: id, Expires: exp.Unix()}
	return cookieFor(SessionCookie, g.opts.Keys.seal(SessionCookie, c), g.cookieDomain(), "/", g.opts.Secure, now, exp)
}

// logout ends the session.
func (g *Gate) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, expiredCookie(SessionCookie, g.cookieDomain(), "/", g.opts.Secure))
	writePage(w, http.StatusOK, errorPage, pageData{Error: "You are signed out of Slipway's previews."})
}

// githubUser is GET /user, the fields the gate needs.
type githubUser struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
}

// exchange trades the code for a user token and reads the user it belongs to.
func (g *Gate) exchange(ctx context.Context, code string) (githubUser, error) {
	hc := g.opts.OAuth.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	form := url.Values{
		"client_id":     {g.opts.OAuth.ClientID},
		"client_secret": {g.opts.OAuth.ClientSecret},
		"code":          {code},
		"redirect_uri":  {g.opts.ControlURL + CallbackPath},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(g.opts.OAuth.WebURL, "/")+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return githubUser{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := doJSON(hc, req, &tok); err != nil {
		return githubUser{}, fmt.Errorf("exchange the code: %w", err)
	}
	if tok.Error != "" || tok.AccessToken == "" {
		return githubUser{}, fmt.Errorf("exchange the code: %s %s", tok.Error, tok.Description)
	}
	api := g.opts.OAuth.APIURL
	if api == "" {
		api = "https://api.github.com/"
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(api, "/")+"/user", nil)
	if err != nil {
		return githubUser{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/vnd.github+json")
	var u githubUser
	if err := doJSON(hc, req, &u); err != nil {
		return githubUser{}, fmt.Errorf("read the signed-in user: %w", err)
	}
	if u.Login == "" {
		return githubUser{}, errors.New("read the signed-in user: no login")
	}
	return u, nil
}

func doJSON(hc *http.Client, req *http.Request, v any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", req.Method, req.URL.Redacted(), resp.Status)
	}
	return json.Unmarshal(body, v)
}

// safeNext keeps the redirect after sign-in on Slipway's own hosts: an
// http(s) URL whose host is the domain or one of its subdomains, without
// credentials; anything else goes to the control surface's root.
func (g *Gate) safeNext(next string) string {
	home := g.opts.ControlURL + "/"
	if next == "" || strings.ContainsAny(next, "\r\n\t\\") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Opaque != "" {
		return home
	}
	h := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if h != g.domain && !strings.HasSuffix(h, "."+g.domain) {
		return home
	}
	return u.String()
}
