package githubfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The fake's OAuth client (of its GitHub App), for the web flow.
const (
	OAuthClientID     = "Iv1.fakeslipwayoauth"
	OAuthClientSecret = "fake-oauth-client-secret"
)

// oauthCodeTTL is how long an authorization code may be exchanged (GitHub: 10 minutes).
const oauthCodeTTL = 10 * time.Minute

type oauthState struct {
	clientID, clientSecret string
	callback               string // the registered callback URL; "" accepts any
	signedIn               string // who the browser is signed in to GitHub as; "" shows the sign-in form
	codes                  map[string]*oauthCode
}

type oauthCode struct {
	login       string
	redirectURI string
	expires     time.Time
}

// SetOAuthCallback registers the OAuth client's callback URL: GitHub
// refuses a redirect_uri that is not under it.
func (f *Fake) SetOAuthCallback(u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.oauth.callback = u
}

// SignIn makes the browser signed in to GitHub as login: the authorize
// page then redirects at once, as GitHub does for an App the user already
// authorized. "" signs out (the authorize page asks who signs in).
func (f *Fake) SignIn(login string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.oauth.signedIn = login
}

// serveWeb is github.com: the OAuth web flow.
func (f *Fake) serveWeb(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/login/oauth/authorize" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		f.authorize(w, r)
	case r.URL.Path == "/login/oauth/access_token" && r.Method == http.MethodPost:
		f.accessToken(w, r)
	default:
		http.NotFound(w, r)
	}
}

var signInForm = template.Must(template.New("signin").Parse(`<!doctype html><html><head><title>Sign in to GitHub</title></head><body>
<h1>Sign in to GitHub</h1><p>to continue to {{.ClientID}}</p>
<form method="post" action="{{.Action}}">
<label>Username <input id="login_field" name="login" autofocus></label>
<button id="signin" type="submit">Sign in</button></form></body></html>`))

// authorize is GET /login/oauth/authorize: with a signed-in browser it
// redirects to redirect_uri with code and state; otherwise it shows a
// sign-in form whose POST signs the browser in and does the same.
func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	st := f.oauth
	f.mu.Unlock()
	if q.Get("client_id") != st.clientID {
		http.Error(w, "The client_id is not valid.", http.StatusNotFound)
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		redirect = st.callback
	}
	if !redirectAllowed(st.callback, redirect) {
		// GitHub shows an error page and does not redirect.
		http.Error(w, "The redirect_uri MUST match the registered callback URL for this application.", http.StatusBadRequest)
		return
	}
	login := st.signedIn
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			login = strings.TrimSpace(r.PostForm.Get("login"))
		}
		if login != "" {
			f.SignIn(login)
		}
	}
	if login == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = signInForm.Execute(w, map[string]any{"ClientID": st.clientID, "Action": template.URL("/login/oauth/authorize?" + q.Encode())})
		return
	}
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	code := hex.EncodeToString(b)
	f.mu.Lock()
	f.oauth.codes[code] = &oauthCode{login: login, redirectURI: redirect, expires: time.Now().Add(oauthCodeTTL)}
	f.mu.Unlock()
	u, _ := url.Parse(redirect)
	rq := u.Query()
	rq.Set("code", code)
	if s := q.Get("state"); s != "" {
		rq.Set("state", s)
	}
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// redirectAllowed: GitHub wants the redirect_uri's host and port to be the
// callback's, and its path a subdirectory of the callback's path.
func redirectAllowed(callback, redirect string) bool {
	if callback == "" {
		return redirect != ""
	}
	c, err1 := url.Parse(callback)
	r, err2 := url.Parse(redirect)
	if err1 != nil || err2 != nil {
		return false
	}
	return c.Scheme == r.Scheme && c.Host == r.Host && strings.HasPrefix(r.Path, c.Path)
}

// accessToken is POST /login/oauth/access_token. Errors come with status
// 200 and an "error" field, as on GitHub. The answer is JSON when the
// client accepts it, else form-encoded.
func (f *Fake) accessToken(w http.ResponseWriter, r *http.Request) {
	var in map[string]string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		_ = json.NewDecoder(r.Body).Decode(&in)
	} else if err := r.ParseForm(); err == nil {
		in = map[string]string{}
		for k := range r.Form {
			in[k] = r.Form.Get(k)
		}
	}
	reply := func(v map[string]string) {
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			writeJSON(w, http.StatusOK, v)
			return
		}
		vals := url.Values{}
		for k, x := range v {
			vals.Set(k, x)
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = w.Write([]byte(vals.Encode()))
	}
	fail := func(code, desc string) {
		reply(map[string]string{"error": code, "error_description": desc,
			"error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#" + strings.ReplaceAll(code, "_", "-")})
	}
	f.mu.Lock()
	st := f.oauth
	c := st.codes[in["code"]]
	delete(f.oauth.codes, in["code"]) // a code is used once
	f.mu.Unlock()
	switch {
	case in["client_id"] != st.clientID || in["client_secret"] != st.clientSecret:
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
	case c == nil || time.Now().After(c.expires):
		fail("bad_verification_code", "The code passed is incorrect or expired.")
	case in["redirect_uri"] != "" && in["redirect_uri"] != c.redirectURI:
		fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
	default:
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		token := "gho_" + hex.EncodeToString(b)
		f.AddToken(token, c.login)
		reply(map[string]string{"access_token": token, "token_type": "bearer", "scope": ""})
	}
}
