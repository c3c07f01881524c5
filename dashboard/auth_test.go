package dashboard

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

const (
	testToken    = "s3cret-token-for-tests"
	testUser     = "ops"
	testPassword = "correct horse battery staple"
	project1     = "acme-shop-pr-1"
)

// clock is a settable clock for session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// authFixture is a dashboard over one environment, with recorded actions.
type authFixture struct {
	srv     *Server
	ts      *httptest.Server
	actions *recordingActions
	clock   *clock
}

func newAuthFixture(t *testing.T, mod func(*Options)) *authFixture {
	t.Helper()
	c := &clock{t: time.Now()}
	st := openStore(t, c.Now)
	track(t, st, store.EnvironmentInfo{Project: project1, Repo: "acme/shop", PR: 1, Title: "Add cart"},
		store.PhaseEntry{Phase: contract.PhaseReady, SHA: shaA})
	eng := &fakeEngine{envs: []stack.Environment{runningEnv(project1, "acme/shop", 1, shaA)}, lines: map[string][]string{project1: {"web-1 | hello"}}}
	acts := &recordingActions{}
	opts := Options{Engine: eng, History: st, Actions: acts, Now: c.Now}
	if mod != nil {
		mod(&opts)
	}
	s, ts := newTestServer(t, opts)
	return &authFixture{srv: s, ts: ts, actions: acts, clock: c}
}

func withCredentials(o *Options) {
	o.Token, o.User, o.Password = testToken, testUser, testPassword
}

// do sends a request to the fixture's server without following redirects.
func (f *authFixture) do(t *testing.T, method, path string, body url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login signs in with the password and returns the session cookie.
func (f *authFixture) login(t *testing.T) *http.Cookie {
	t.Helper()
	resp, body := f.do(t, "POST", "/login", url.Values{"user": {testUser}, "password": {testPassword}, "next": {"/"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf loads the environment page with the cookie and returns its CSRF token.
func (f *authFixture) csrfOf(t *testing.T, c *http.Cookie) string {
	t.Helper()
	resp, body := f.do(t, "GET", "/environments/"+project1, nil, map[string]string{"Cookie": c.String()})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("environment page: %d", resp.StatusCode)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("environment page has no CSRF token")
	}
	return m[1]
}

func TestNotConfiguredRefusesToServe(t *testing.T) {
	f := newAuthFixture(t, nil)
	for _, path := range []string{"/", "/environments/" + project1, "/login"} {
		resp, body := f.do(t, "GET", path, nil, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "dashboard.token_file") || !strings.Contains(body, "not configured") {
			t.Errorf("GET %s: %d, want 403 explaining the configuration:\n%.300s", path, resp.StatusCode, body)
		}
	}
	resp, body := f.do(t, "GET", "/api/v1/environments", nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "dashboard.token_file") {
		t.Errorf("API: %d %s", resp.StatusCode, body)
	}
	resp, _ = f.do(t, "POST", "/api/v1/environments/"+project1+"/actions/destroy", nil, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("API action: %d", resp.StatusCode)
	}
	if len(f.actions.Calls()) != 0 {
		t.Errorf("actions ran: %v", f.actions.Calls())
	}
}

func TestBearerToken(t *testing.T) {
	f := newAuthFixture(t, withCredentials)
	resp, body := f.do(t, "GET", "/api/v1/environments", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	for _, h := range []string{"Bearer wrong", "Bearer " + testToken + "x", "Basic " + testToken, testToken, "Bearer"} {
		if resp, _ := f.do(t, "GET", "/api/v1/environments", nil, map[string]string{"Authorization": h}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", h, resp.StatusCode)
		}
	}
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	resp, body = f.do(t, "GET", "/api/v1/environments", nil, auth)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, project1) {
		t.Errorf("with token: %d %s", resp.StatusCode, body)
	}
	// No CSRF token needed: a bearer token is no ambient credential.
	resp, body = f.do(t, "POST", "/api/v1/environments/"+project1+"/actions/sleep", nil, auth)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, `"status": "queued"`) {
		t.Errorf("action with token: %d %s", resp.StatusCode, body)
	}
	if got := f.actions.Calls(); len(got) != 1 || got[0] != "sleep "+project1 {
		t.Errorf("calls %v", got)
	}
	// A link from another site gets the page reloaded from this origin,
	// so that the SameSite=Strict session cookie is sent.
	resp, body = f.do(t, "GET", "/environments/"+project1, nil, map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh" content="0"`) {
		t.Errorf("cross-site navigation: %d %s", resp.StatusCode, body)
	}
	// Pages without credentials send the browser to the login form.
	resp, _ = f.do(t, "GET", "/environments/"+project1+"?x=1", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next="+url.QueryEscape("/environments/"+project1+"?x=1") {
		t.Errorf("page without credentials: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestTokenLoginForm(t *testing.T) {
	f := newAuthFixture(t, func(o *Options) { o.Token = testToken })
	resp, body := f.do(t, "GET", "/login", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="token"`) || strings.Contains(body, `name="password"`) {
		t.Fatalf("token-only login form: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = f.do(t, "POST", "/login", url.Values{"token": {"nope"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	resp, _ = f.do(t, "POST", "/login", url.Values{"token": {testToken}, "next": {"/environments/" + project1}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/environments/"+project1 {
		t.Fatalf("token login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == sessionCookie {
			c = k
		}
	}
	if c == nil {
		t.Fatal("no session cookie")
	}
	if resp, _ := f.do(t, "GET", "/", nil, map[string]string{"Cookie": c.String()}); resp.StatusCode != http.StatusOK {
		t.Errorf("list with token session: %d", resp.StatusCode)
	}
}

func TestSessionCookie(t *testing.T) {
	f := newAuthFixture(t, withCredentials)
	resp, _ := f.do(t, "POST", "/login", url.Values{"user": {testUser}, "password": {"wrong"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("wrong password: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = f.do(t, "POST", "/login", url.Values{"user": {"someone"}, "password": {testPassword}}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong user: %d", resp.StatusCode)
	}
	c := f.login(t)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" {
		t.Errorf("cookie flags over http: HttpOnly %v SameSite %v Secure %v Path %q", c.HttpOnly, c.SameSite, c.Secure, c.Path)
	}
	cookie := map[string]string{"Cookie": c.String()}
	resp, body := f.do(t, "GET", "/", nil, cookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, project1) || !strings.Contains(body, "Sign out") {
		t.Errorf("list with session: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/api/v1/environments", nil, cookie); resp.StatusCode != http.StatusOK {
		t.Errorf("API GET with session: %d", resp.StatusCode)
	}

	// A tampered cookie is no session.
	v := []byte(c.Value)
	v[3] ^= 1
	if resp, _ := f.do(t, "GET", "/", nil, map[string]string{"Cookie": sessionCookie + "=" + string(v)}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("tampered cookie: %d, want redirect to login", resp.StatusCode)
	}
	// Nor is an expired one.
	f.clock.Advance(13 * time.Hour)
	if resp, _ := f.do(t, "GET", "/", nil, cookie); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("expired session: %d, want redirect to login", resp.StatusCode)
	}
}

func TestSessionCookieSecureOverTLS(t *testing.T) {
	s, err := New(Options{Engine: &fakeEngine{}, Token: testToken, User: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(s)
	defer ts.Close()
	hc := ts.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.PostForm(ts.URL+"/login", url.Values{"user": {testUser}, "password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure {
		t.Errorf("cookie over TLS: %v, want Secure", resp.Cookies())
	}
	// An https BaseURL marks it Secure behind a TLS-terminating proxy too.
	s2, err := New(Options{Engine: &fakeEngine{}, User: testUser, Password: testPassword, BaseURL: "https://preview.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"user": {testUser}, "password": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s2.ServeHTTP(rec, req)
	if cs := rec.Result().Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("cookie with https base URL: %v", cs)
	}
}

func TestSessionKeyAndCredentialRotation(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	c := &clock{t: time.Now()}
	mk := func(password string) *Server {
		s, err := New(Options{Engine: &fakeEngine{}, User: testUser, Password: password, SessionKey: key, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	get := func(s *Server, cookie string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Cookie", cookie)
		s.ServeHTTP(rec, req)
		return rec.Code
	}
	a := mk(testPassword)
	sess, ok := a.auth.login(testUser, testPassword, "")
	if !ok {
		t.Fatal("login failed")
	}
	cookie := sessionCookie + "=" + a.auth.signSession(sess)
	if code := get(mk(testPassword), cookie); code != http.StatusOK {
		t.Errorf("same key and password after a restart: %d, want 200", code)
	}
	if code := get(mk("a new password"), cookie); code != http.StatusSeeOther {
		t.Errorf("after a password change: %d, want the session gone", code)
	}
}

func TestCSRF(t *testing.T) {
	f := newAuthFixture(t, withCredentials)
	c := f.login(t)
	csrf := f.csrfOf(t, c)
	other := f.login(t)
	otherCSRF := f.csrfOf(t, other)
	if csrf == otherCSRF {
		t.Fatal("two sessions share a CSRF token")
	}
	action := "/environments/" + project1 + "/actions/sleep"
	cookie := map[string]string{"Cookie": c.String()}

	for _, tt := range []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{}, cookie},
		{"empty token", url.Values{"csrf": {""}}, cookie},
		{"forged token", url.Values{"csrf": {"forged"}}, cookie},
		{"another session's token", url.Values{"csrf": {otherCSRF}}, cookie},
		{"valid token, cross-site", url.Values{"csrf": {csrf}}, map[string]string{"Cookie": c.String(), "Sec-Fetch-Site": "cross-site"}},
		{"valid token, foreign origin", url.Values{"csrf": {csrf}}, map[string]string{"Cookie": c.String(), "Origin": "https://evil.example"}},
		{"valid token, no session", url.Values{"csrf": {csrf}}, nil},
	} {
		resp, body := f.do(t, "POST", action, tt.form, tt.hdr)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403\n%.200s", tt.name, resp.StatusCode, body)
		}
	}
	if got := f.actions.Calls(); len(got) != 0 {
		t.Fatalf("forged requests ran actions: %v", got)
	}
	resp, body := f.do(t, "POST", action, url.Values{"csrf": {csrf}}, map[string]string{"Cookie": c.String(), "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/environments/"+project1+"?action=sleep&outcome=queued" {
		t.Fatalf("valid form: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if got := f.actions.Calls(); len(got) != 1 || got[0] != "sleep "+project1 {
		t.Errorf("calls %v", got)
	}

	// The JSON API with the cookie needs the token in a header.
	api := "/api/v1/environments/" + project1 + "/actions/wake"
	if resp, _ := f.do(t, "POST", api, nil, cookie); resp.StatusCode != http.StatusForbidden {
		t.Errorf("API POST with cookie and no X-CSRF-Token: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", api, nil, map[string]string{"Cookie": c.String(), "X-CSRF-Token": csrf}); resp.StatusCode != http.StatusAccepted {
		t.Errorf("API POST with cookie and X-CSRF-Token: %d", resp.StatusCode)
	}

	// Logging out needs the token too, so another site cannot sign one out.
	if resp, _ := f.do(t, "POST", "/logout", url.Values{}, cookie); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without token: %d", resp.StatusCode)
	}
	resp, _ = f.do(t, "POST", "/logout", url.Values{"csrf": {csrf}}, cookie)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout: %d %v", resp.StatusCode, resp.Cookies())
	}
}

func TestPublicReadOnly(t *testing.T) {
	f := newAuthFixture(t, func(o *Options) { withCredentials(o); o.Public = true })
	resp, body := f.do(t, "GET", "/", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, project1) || !strings.Contains(body, "Sign in") {
		t.Errorf("public list: %d", resp.StatusCode)
	}
	resp, body = f.do(t, "GET", "/environments/"+project1, nil, nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "data-action=") || strings.Contains(body, `name="csrf"`) {
		t.Errorf("public environment page: %d, must show no action buttons", resp.StatusCode)
	}
	if strings.Contains(body, "data-log-stream") || !strings.Contains(body, "Sign in to see the logs") {
		t.Error("public page streams logs without PublicLogs")
	}
	if resp, _ := f.do(t, "GET", "/api/v1/environments/"+project1, nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("public API GET: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/api/v1/environments/"+project1+"/logs", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("public logs without PublicLogs: %d, want 401", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", "/api/v1/environments/"+project1+"/actions/destroy", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("public API action: %d, want 401", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", "/environments/"+project1+"/actions/destroy", url.Values{"csrf": {"x"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("public form action: %d, want 403", resp.StatusCode)
	}
	if got := f.actions.Calls(); len(got) != 0 {
		t.Errorf("public mode ran actions: %v", got)
	}
	// A signed-in operator still gets the buttons.
	c := f.login(t)
	if _, body := f.do(t, "GET", "/environments/"+project1, nil, map[string]string{"Cookie": c.String()}); !strings.Contains(body, `data-action="destroy"`) {
		t.Error("operator sees no destroy button on a public dashboard")
	}

	g := newAuthFixture(t, func(o *Options) { o.Public, o.PublicLogs = true, true })
	if resp, body := g.do(t, "GET", "/api/v1/environments/"+project1+"/logs", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "web-1 | hello") {
		t.Errorf("PublicLogs: %d %s", resp.StatusCode, body)
	}
	resp, body = g.do(t, "POST", "/api/v1/environments/"+project1+"/actions/destroy", nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "read-only") {
		t.Errorf("action on a public dashboard without credentials: %d %s", resp.StatusCode, body)
	}
}

func TestInsecureLocalMode(t *testing.T) {
	f := newAuthFixture(t, func(o *Options) { o.Insecure = true })
	// httptest listens on loopback: a local client.
	resp, body := f.do(t, "GET", "/environments/"+project1, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "local mode") {
		t.Fatalf("loopback client: %d", resp.StatusCode)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token in local mode")
	}
	action := "/environments/" + project1 + "/actions/destroy"
	if resp, _ := f.do(t, "POST", action, url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("local action without CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", action, url.Values{"csrf": {m[1]}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("local action with CSRF token: %d", resp.StatusCode)
	}
	if got := f.actions.Calls(); len(got) != 1 {
		t.Errorf("calls %v", got)
	}

	// Anyone else is refused.
	for _, remote := range []string{"203.0.113.9:5555", "[2001:db8::1]:443", "10.0.0.2:80"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = remote
		f.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Local access only") {
			t.Errorf("remote %s: %d", remote, rec.Code)
		}
	}
	// Configured credentials switch insecure mode off.
	g := newAuthFixture(t, func(o *Options) { o.Insecure = true; o.Token = testToken })
	if resp, _ := g.do(t, "GET", "/api/v1/environments", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("insecure with a token configured: %d, want 401", resp.StatusCode)
	}
}

func TestLoginRateLimit(t *testing.T) {
	f := newAuthFixture(t, withCredentials)
	for i := 0; i < 10; i++ {
		f.do(t, "POST", "/login", url.Values{"user": {testUser}, "password": {"guess"}}, nil)
	}
	resp, _ := f.do(t, "POST", "/login", url.Values{"user": {testUser}, "password": {testPassword}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after 10 failures: %d, want 429", resp.StatusCode)
	}
	f.clock.Advance(time.Minute)
	resp, _ = f.do(t, "POST", "/login", url.Values{"user": {testUser}, "password": {testPassword}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a minute later: %d", resp.StatusCode)
	}
}

func TestSafeNext(t *testing.T) {
	for _, tt := range []struct{ next, base, want string }{
		{"/environments/x", "/", "/environments/x"},
		{"/?phase=ready", "/", "/?phase=ready"},
		{"", "/", "/"},
		{"//evil.example/", "/", "/"},
		{"https://evil.example/", "/", "/"},
		{"/\\evil.example", "/", "/"},
		{"/other/x", "/slipway/", "/slipway/"},
		{"/slipway/environments/x", "/slipway/", "/slipway/environments/x"},
		{"/a\r\nLocation: x", "/", "/"},
	} {
		if got := safeNext(tt.next, tt.base); got != tt.want {
			t.Errorf("safeNext(%q, %q) = %q, want %q", tt.next, tt.base, got, tt.want)
		}
	}
}

func TestSecretEqual(t *testing.T) {
	if !secretEqual("abc", "abc") || secretEqual("abc", "abd") || secretEqual("abc", "abcd") || secretEqual("", "") {
		t.Error("secretEqual")
	}
}

// TestSecretsComparedInConstantTime reads the package's source: no secret
// (token, password, CSRF token, signature) may be compared with == or !=,
// and the comparisons must go through subtle or hmac.
func TestSecretsComparedInConstantTime(t *testing.T) {
	secret := regexp.MustCompile(`(?i)token|password|csrf|sig|mac|secret`)
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var sawSubtle, sawHMAC bool
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sawSubtle = sawSubtle || strings.Contains(string(src), "subtle.ConstantTimeCompare")
		sawHMAC = sawHMAC || strings.Contains(string(src), "hmac.Equal")
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			be, ok := n.(*ast.BinaryExpr)
			if !ok || (be.Op != token.EQL && be.Op != token.NEQ) {
				return true
			}
			for _, side := range []ast.Expr{be.X, be.Y} {
				if lit, ok := side.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					return true // comparing with a constant: kinds, empty checks
				}
			}
			for _, side := range []ast.Expr{be.X, be.Y} {
				if id := lastIdent(side); id != "" && secret.MatchString(id) {
					t.Errorf("%s: %s compared with %s; use secretEqual or hmac.Equal", fset.Position(be.Pos()), id, be.Op)
				}
			}
			return true
		})
	}
	if !sawSubtle || !sawHMAC {
		t.Errorf("subtle.ConstantTimeCompare used: %v, hmac.Equal used: %v", sawSubtle, sawHMAC)
	}
}

func lastIdent(e ast.Expr) string {
	switch v := e.(type) {
	case *ast.Ident:
		return v.Name
	case *ast.SelectorExpr:
		return v.Sel.Name
	case *ast.CallExpr:
		return lastIdent(v.Fun)
	}
	return ""
}

func TestNewValidatesOptions(t *testing.T) {
	eng := &fakeEngine{}
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		{"no engine", Options{}, "Engine is required"},
		{"user without password", Options{Engine: eng, User: "ops"}, "go together"},
		{"password without user", Options{Engine: eng, Password: "x"}, "go together"},
		{"token with newline", Options{Engine: eng, Token: "abc\n"}, "line break"},
		{"short session key", Options{Engine: eng, SessionKey: []byte("short")}, "at least 32"},
		{"bad scheme", Options{Engine: eng, BaseURL: "ftp://x/"}, "scheme"},
		{"relative path", Options{Engine: eng, BaseURL: "dash/"}, "absolute"},
	} {
		_, err := New(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestBasePath(t *testing.T) {
	f := newAuthFixture(t, func(o *Options) { withCredentials(o); o.BaseURL = "https://ops.example.com/slipway" })
	resp, _ := f.do(t, "GET", "/slipway/", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/slipway/login?next=%2Fslipway%2F" {
		t.Errorf("list under base: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = f.do(t, "POST", "/slipway/login", url.Values{"user": {testUser}, "password": {testPassword}, "next": {"/elsewhere"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/slipway/" {
		t.Fatalf("login under base: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := resp.Cookies()[0]
	if c.Path != "/slipway/" || !c.Secure {
		t.Errorf("cookie path %q secure %v", c.Path, c.Secure)
	}
	resp, body := f.do(t, "GET", "/slipway/", nil, map[string]string{"Cookie": c.String()})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/slipway/environments/`+project1+`"`) || !strings.Contains(body, `/slipway/static/app.css?v=`) {
		t.Errorf("links under base: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/api/v1/environments", nil, map[string]string{"Authorization": "Bearer " + testToken}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("outside the base path: %d", resp.StatusCode)
	}
}
