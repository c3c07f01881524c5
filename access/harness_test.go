package access

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/proxy"
)

// seen is what the real backend received.
type seen struct {
	Host    string
	URI     string
	Cookies []string
	Header  http.Header
	Body    string
}

// backend is a real HTTP server behind the proxy that records requests.
type backend struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []seen
}

const backendBody = "hello from the preview"

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, seen{Host: r.Host, URI: r.RequestURI, Cookies: r.Header.Values("Cookie"), Header: r.Header.Clone(), Body: string(body)})
		b.mu.Unlock()
		io.WriteString(w, backendBody)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) requests() []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.got...)
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakePermissions answers roles from a map keyed "repo user" and counts calls.
type fakePermissions struct {
	mu    sync.Mutex
	roles map[string]string
	calls int
	// answered, if set, receives one value per answer given.
	answered chan struct{}
}

func (f *fakePermissions) Permission(_ context.Context, repo, user string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	role, ok := f.roles[repo+" "+user]
	if !ok {
		role = "none"
	}
	if f.answered != nil {
		defer func() { f.answered <- struct{}{} }()
	}
	return role, nil
}

func (f *fakePermissions) set(repo, user, role string) {
	f.mu.Lock()
	f.roles[repo+" "+user] = role
	f.mu.Unlock()
}

func (f *fakePermissions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// rig is a proxy with the gate in front of a real backend, over real sockets.
type rig struct {
	t       *testing.T
	routes  *proxy.Routes
	gate    *Gate
	backend *backend
	proxy   *httptest.Server
	clock   *clock
	store   *Store
	keys    *Keyring
}

const testDomain = "preview.test"

// Hosts of the two repositories' previews (several repositories: the
// templates name the repository).
const (
	shopHost = "pr-7-shop." + testDomain
	blogHost = "pr-3-blog." + testDomain
)

func newRig(t *testing.T, access map[string]RepoAccess, perms Permissions) *rig {
	return newRigWith(t, access, perms, OAuthClient{})
}

// newRigWith serves the control surface (sign-in) on the domain itself and
// the proxy on every other host, as slipway serve does.
func newRigWith(t *testing.T, access map[string]RepoAccess, perms Permissions, oauth OAuthClient) *rig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	be := newBackend(t)
	u, _ := url.Parse(be.srv.URL)
	routes := proxy.NewRoutes(nil, contract.DefaultHostTemplates(testDomain, true))
	routes.ReplaceContainers([]proxy.Container{
		{ID: "c1", Name: "shop-web-1", Project: contract.ProjectName("acme", "shop", 7), Service: "web", Repo: "acme/shop", PR: 7, Host: shopHost, Port: u.Port(), Running: true, IP: "127.0.0.1"},
		{ID: "c2", Name: "blog-web-1", Project: contract.ProjectName("acme", "blog", 3), Service: "web", Repo: "acme/blog", PR: 3, Host: blogHost, Port: u.Port(), Running: true, IP: "127.0.0.1"},
	})
	if routes.Lookup(shopHost) == nil || routes.Lookup(blogHost) == nil {
		t.Fatalf("routes not in the table: %v", routes.Problems())
	}
	clk := &clock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	keys, err := NewKeyring([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(t.TempDir()+"/access.db", clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g, err := New(Options{
		Domain: testDomain, ControlURL: "http://" + testDomain + ":" + port, Keys: keys, OAuth: oauth,
		Repos: []string{"acme/shop", "acme/blog"},
		AccessFor: func(repo string) RepoAccess {
			if a, ok := access[repo]; ok {
				return a
			}
			return RepoAccess{Mode: Public}
		},
		Permissions: perms, Tokens: st, NoIndex: true, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := proxy.NewHandler(routes, proxy.HandlerOptions{Gate: g})
	t.Cleanup(h.Close)
	control := http.NewServeMux()
	g.Register(control)
	ps := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if host, _, _ := net.SplitHostPort(req.Host); host == testDomain || req.Host == testDomain {
			control.ServeHTTP(w, req)
			return
		}
		h.ServeHTTP(w, req)
	}))
	ps.Listener = ln
	ps.Start()
	t.Cleanup(ps.Close)
	return &rig{t: t, routes: routes, gate: g, backend: be, proxy: ps, clock: clk, store: st, keys: keys}
}

// do sends a request for host through the proxy, never following redirects.
func (r *rig) do(method, host, path string, body io.Reader, header http.Header) (*http.Response, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.proxy.URL+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// noCredentialReached fails when any request the backend received carried
// one of Slipway's credentials.
func (r *rig) noCredentialReached(secrets ...string) {
	r.t.Helper()
	for _, s := range r.backend.requests() {
		for _, c := range s.Cookies {
			if strings.Contains(c, CookiePrefix) {
				r.t.Errorf("backend received Slipway's cookie: %q", c)
			}
		}
		if v := s.Header.Get(BypassHeader); v != "" {
			r.t.Errorf("backend received the bypass header: %q", v)
		}
		if strings.Contains(s.URI, BypassParam) {
			r.t.Errorf("backend received the bypass parameter: %q", s.URI)
		}
		for _, sec := range secrets {
			all := s.URI + s.Body
			for _, v := range s.Header {
				all += strings.Join(v, " ")
			}
			if sec != "" && strings.Contains(all, sec) {
				r.t.Errorf("backend received the secret %q in %s", sec, s.URI)
			}
		}
	}
}

// routeTo points shop's host at another backend port on loopback.
func (r *rig) routeTo(port string) {
	r.routes.PutContainer(proxy.Container{ID: "c1", Name: "shop-web-1", Project: contract.ProjectName("acme", "shop", 7), Service: "web",
		Repo: "acme/shop", PR: 7, Host: shopHost, Port: port, Running: true, IP: "127.0.0.1"})
}
