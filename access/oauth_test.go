package access_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/access"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/proxy"
)

// ghPerms asks the real GitHub client (against the fake) for permissions.
type ghPerms struct{ c *gh.Client }

func (p ghPerms) Permission(ctx context.Context, repo, login string) (string, error) {
	r, err := gh.ParseRepo(repo)
	if err != nil {
		return "", err
	}
	perm, err := p.c.Permission(ctx, r, login)
	return string(perm), err
}

// site is slipway's HTTP surface for the OAuth tests: the control surface
// on the domain, the gated proxy on every preview host, a real backend.
type site struct {
	url     string // base of the listener, http://127.0.0.1:port
	port    string
	fake    *githubfake.Fake
	mu      sync.Mutex
	backend []http.Header
}

const domain = "preview.test"

func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{fake: githubfake.New(t)}
	s.fake.AddRepo("acme/shop", githubfake.RepoOptions{Private: true})
	s.fake.SetPermission("acme/shop", "ada", githubfake.Read)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.backend = append(s.backend, r.Header.Clone())
		s.mu.Unlock()
		io.WriteString(w, `<title>shop preview</title><p id="landed">the preview</p>`)
	}))
	t.Cleanup(be.Close)
	bu, _ := url.Parse(be.URL)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, s.port, _ = net.SplitHostPort(ln.Addr().String())
	s.url = "http://" + ln.Addr().String()
	s.fake.SetOAuthCallback("http://" + domain + ":" + s.port + "/auth/callback")
	client, err := gh.New(gh.Options{APIURL: s.fake.URL, Token: s.fake.Token})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := access.NewKeyring([]byte(strings.Repeat("s", 32)))
	gate, err := access.New(access.Options{
		Domain: domain, ControlURL: "http://" + domain + ":" + s.port, Keys: keys, Repos: []string{"acme/shop"},
		AccessFor:   func(string) access.RepoAccess { return access.RepoAccess{Mode: access.GitHub} },
		Permissions: ghPerms{client}, NoIndex: true,
		OAuth: access.OAuthClient{ClientID: githubfake.OAuthClientID, ClientSecret: githubfake.OAuthClientSecret, WebURL: s.fake.WebURL, APIURL: s.fake.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	routes := proxy.NewRoutes(nil, contract.DefaultHostTemplates(domain, false))
	routes.ReplaceContainers([]proxy.Container{{ID: "c1", Name: "shop-web-1", Project: contract.ProjectName("acme", "shop", 7), Service: "web",
		Repo: "acme/shop", PR: 7, Host: "pr-7." + domain, Port: bu.Port(), Running: true, IP: "127.0.0.1"}})
	h := proxy.NewHandler(routes, proxy.HandlerOptions{Gate: gate})
	t.Cleanup(h.Close)
	control := http.NewServeMux()
	gate.Register(control)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, _ := net.SplitHostPort(r.Host); host == domain {
			control.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

// browser is an HTTP client with cookies that resolves every preview.test
// name to the site, as DNS would.
func (s *site) browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	addr := strings.TrimPrefix(s.url, "http://")
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(a); host == domain || strings.HasSuffix(host, "."+domain) {
			a = addr
		}
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}
}

func TestGitHubSignInLandsOnThePreview(t *testing.T) {
	s := newSite(t)
	s.fake.SignIn("ada")
	c := s.browser(t)
	preview := "http://pr-7." + domain + ":" + s.port + "/orders?id=3"
	resp, err := c.Get(preview)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "the preview") || resp.Request.URL.String() != preview {
		t.Fatalf("landed on %s with %d %q", resp.Request.URL, resp.StatusCode, body)
	}
	if resp.Header.Get("X-Robots-Tag") != "noindex" {
		t.Error("preview response without noindex")
	}
	// The flow used the real shapes: authorize, access_token, GET /user.
	var paths []string
	for _, r := range s.fake.Requests() {
		paths = append(paths, r.Host+" "+r.Method+" "+r.Path)
	}
	want := []string{"web GET /login/oauth/authorize", "web POST /login/oauth/access_token", "api GET /user"}
	for _, w := range want {
		if !strings.Contains(strings.Join(paths, "\n"), w) {
			t.Errorf("fake GitHub never saw %q: %v", w, paths)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.backend {
		if strings.Contains(h.Get("Cookie"), access.CookiePrefix) {
			t.Errorf("backend saw Slipway's cookie: %q", h.Get("Cookie"))
		}
	}
}

func TestGitHubSignInWithoutAccessIsRefusedNamingTheRepository(t *testing.T) {
	s := newSite(t)
	s.fake.SignIn("mallory")
	resp, err := s.browser(t).Get("http://pr-7." + domain + ":" + s.port + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "acme/shop") || !strings.Contains(string(body), "mallory") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if len(s.backend) != 0 {
		t.Error("the backend was reached")
	}
}

func TestCallbackRefusesForgedState(t *testing.T) {
	s := newSite(t)
	s.fake.SignIn("ada")
	c := s.browser(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// An attacker's callback URL (code of the attacker's own sign-in) in a
	// victim's browser that never started a sign-in: refused.
	resp, err := c.Get("http://" + domain + ":" + s.port + "/auth/callback?code=abc&state=forged")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged state: %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == access.SessionCookie && ck.Value != "" {
			t.Error("a session cookie was set")
		}
	}
	// A login whose next leaves the domain goes home after sign-in.
	resp, err = c.Get("http://" + domain + ":" + s.port + "/auth/login?next=" + url.QueryEscape("https://evil.example/steal"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	resp, err = c.Get(loc.String()) // the fake's authorize, signed in: back to the callback
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Location"); got != "http://"+domain+":"+s.port+"/" {
		t.Errorf("after sign-in with next off the domain: redirected to %q", got)
	}
}
