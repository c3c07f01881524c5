// Package github is everything Slipway says to and asks of GitHub: reading
// pull requests and collaborator permissions, downloading and safely
// extracting a pull request's source, deployments and their statuses, the
// sticky preview comment, the slipway/preview commit status, ChatOps command
// parsing and reactions, and the Reporter that turns an environment's phase
// changes into all of those.
//
// It talks to api.github.com, GitHub Enterprise or the fake in githubfake,
// authenticated by a personal access token or as a GitHub App installation,
// and waits out rate limits and transient failures (see RetryPolicy). It
// never decides anything: the reconciler does, and calls it.
package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v60/github"
)

// DefaultAPIURL is GitHub's REST API.
const DefaultAPIURL = "https://api.github.com/"

// Options configures a Client. Either Token or AppID with PrivateKey is required.
type Options struct {
	// APIURL is the REST API base, used exactly as given (no "api/v3/" is
	// appended): https://api.github.com/, https://ghe.example.com/api/v3/, or
	// a test server's URL. Default DefaultAPIURL.
	APIURL string
	// Token is a personal access token. Classic tokens need the repo scope;
	// fine-grained ones: pull requests, issues, deployments, commit statuses
	// (read and write), contents and metadata (read).
	Token string
	// AppID and PrivateKey (PEM) authenticate as a GitHub App; each request
	// then uses the token of the installation that covers the repository.
	AppID      int64
	PrivateKey []byte
	// Logger receives retries and waits. Default: discard.
	Logger *slog.Logger
	// Transport is the base round tripper. Default http.DefaultTransport.
	Transport http.RoundTripper
	// Retry bounds waits and retries; tests inject Retry.Sleep.
	Retry RetryPolicy
	// PermissionTTL is how long a collaborator permission is cached. Default 1m.
	PermissionTTL time.Duration
	// UserAgent sent with every request. Default "slipway".
	UserAgent string
}

// Repo names a repository. InstallationID, when known (it arrives with each
// webhook event), selects the GitHub App installation; when zero the client
// uses the last one it saw for the repository or asks GitHub. It is ignored
// with a personal access token.
type Repo struct {
	Owner, Name    string
	InstallationID int64
}

// ParseRepo parses "owner/name".
func ParseRepo(fullName string) (Repo, error) {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return Repo{}, fmt.Errorf("repository %q: want owner/name", fullName)
	}
	return Repo{Owner: owner, Name: name}, nil
}

// String is "owner/name".
func (r Repo) String() string { return r.Owner + "/" + r.Name }

// key identifies the repository in caches (GitHub names are case-insensitive).
func (r Repo) key() string { return strings.ToLower(r.String()) }

// Client talks to GitHub. It is safe for concurrent use.
type Client struct {
	api     *url.URL
	log     *slog.Logger
	base    http.RoundTripper // retrying, unauthenticated
	plain   *http.Client      // unauthenticated, for archive hosts
	permTTL time.Duration
	now     func() time.Time
	ua      string

	token *gh.Client // personal access token, or nil
	app   *appAuth   // GitHub App, or nil

	mu       sync.Mutex
	perms    map[permKey]permEntry
	self     string             // our login, once known
	inactive map[int64]struct{} // deployment IDs known to be inactive
}

type appAuth struct {
	id      int64
	signer  ghinstallation.Signer
	jwt     *gh.Client // authenticated as the App itself
	mu      sync.Mutex
	clients map[int64]*gh.Client // by installation ID
	repos   map[string]int64     // repo key → installation ID
}

// New returns a Client. It makes no request.
func New(opts Options) (*Client, error) {
	api := opts.APIURL
	if api == "" {
		api = DefaultAPIURL
	}
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	u, err := url.Parse(api)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("github api url %q: not an absolute URL", opts.APIURL)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := opts.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	c := &Client{
		api:      u,
		log:      log,
		base:     newRetryTransport(tr, opts.Retry, log),
		permTTL:  opts.PermissionTTL,
		now:      time.Now,
		ua:       opts.UserAgent,
		perms:    map[permKey]permEntry{},
		inactive: map[int64]struct{}{},
	}
	if c.permTTL <= 0 {
		c.permTTL = time.Minute
	}
	if c.ua == "" {
		c.ua = "slipway"
	}
	c.plain = &http.Client{Transport: c.base}

	switch {
	case opts.Token != "" && opts.AppID != 0:
		return nil, errors.New("github auth: give a token or an app, not both")
	case opts.Token != "":
		c.token = c.newREST(&http.Client{Transport: c.base}).WithAuthToken(opts.Token)
	case opts.AppID != 0:
		key, err := jwt.ParseRSAPrivateKeyFromPEM(opts.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("github app %d private key: %w", opts.AppID, err)
		}
		a := &appAuth{
			id:      opts.AppID,
			signer:  ghinstallation.NewRSASigner(jwt.SigningMethodRS256, key),
			clients: map[int64]*gh.Client{},
			repos:   map[string]int64{},
		}
		atr, err := c.appsTransport(a)
		if err != nil {
			return nil, err
		}
		a.jwt = c.newREST(&http.Client{Transport: atr})
		c.app = a
	default:
		return nil, errors.New("github auth: a token or an app id and private key is required")
	}
	return c, nil
}

// appsTransport signs requests as the App. Every installation gets its own
// AppsTransport around the one shared signer: ghinstallation writes BaseURL
// and Client into the AppsTransport on each token refresh, so sharing one
// between installations would race.
func (c *Client) appsTransport(a *appAuth) (*ghinstallation.AppsTransport, error) {
	atr, err := ghinstallation.NewAppsTransportWithOptions(c.base, a.id, ghinstallation.WithSigner(a.signer))
	if err != nil {
		return nil, fmt.Errorf("github app %d: %w", a.id, err)
	}
	atr.BaseURL = strings.TrimSuffix(c.api.String(), "/")
	return atr, nil
}

func (c *Client) newREST(hc *http.Client) *gh.Client {
	g := gh.NewClient(hc)
	g.BaseURL = c.api
	g.UploadURL = c.api
	g.UserAgent = c.ua
	return g
}

// rest returns the API client for repo: the token client, or the client of
// the App installation covering repo.
func (c *Client) rest(ctx context.Context, repo Repo) (*gh.Client, error) {
	if c.token != nil {
		return c.token, nil
	}
	id, err := c.installation(ctx, repo)
	if err != nil {
		return nil, err
	}
	a := c.app
	a.mu.Lock()
	defer a.mu.Unlock()
	if g, ok := a.clients[id]; ok {
		return g, nil
	}
	atr, err := c.appsTransport(a)
	if err != nil {
		return nil, err
	}
	itr := &installationTransport{c: c, id: id, next: ghinstallation.NewFromAppsTransport(atr, id)}
	g := c.newREST(&http.Client{Transport: itr})
	a.clients[id] = g
	return g, nil
}

// installationTransport authenticates as one installation. When GitHub says
// the installation is gone (its token exchange answers 404, or its token is
// refused with 401: the App was uninstalled or reinstalled), the client
// forgets the installation, so the next call looks the repository's
// installation up again instead of failing forever.
type installationTransport struct {
	c    *Client
	id   int64
	next http.RoundTripper
}

func (t *installationTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	var he *ghinstallation.HTTPError
	switch {
	case errors.As(err, &he) && he.Response != nil &&
		(he.Response.StatusCode == http.StatusNotFound || he.Response.StatusCode == http.StatusUnauthorized):
		t.c.forgetInstallation(t.id)
	case err == nil && resp.StatusCode == http.StatusUnauthorized:
		t.c.forgetInstallation(t.id)
	}
	return resp, err
}

func (c *Client) forgetInstallation(id int64) {
	a := c.app
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.clients, id)
	for repo, rid := range a.repos {
		if rid == id {
			delete(a.repos, repo)
		}
	}
	c.log.Warn("github app installation no longer valid; will look it up again", "installation", id)
}

// installation returns the App installation ID for repo: the one given with
// it (remembered for later calls without one), the one remembered, or the one
// GitHub reports (GET /repos/{owner}/{repo}/installation).
func (c *Client) installation(ctx context.Context, repo Repo) (int64, error) {
	a := c.app
	a.mu.Lock()
	if repo.InstallationID != 0 {
		a.repos[repo.key()] = repo.InstallationID
		a.mu.Unlock()
		return repo.InstallationID, nil
	}
	id, ok := a.repos[repo.key()]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	inst, _, err := a.jwt.Apps.FindRepositoryInstallation(ctx, repo.Owner, repo.Name)
	if err != nil {
		return 0, fmt.Errorf("find app installation for %s: %w", repo, err)
	}
	id = inst.GetID()
	if id == 0 {
		return 0, fmt.Errorf("find app installation for %s: no id in answer", repo)
	}
	a.mu.Lock()
	a.repos[repo.key()] = id
	a.mu.Unlock()
	return id, nil
}

// login returns the account Slipway acts as: the token's user, or the App's
// bot account "<slug>[bot]".
func (c *Client) login(ctx context.Context, repo Repo) (string, error) {
	c.mu.Lock()
	self := c.self
	c.mu.Unlock()
	if self != "" {
		return self, nil
	}
	if c.token != nil {
		u, _, err := c.token.Users.Get(ctx, "")
		if err != nil {
			return "", fmt.Errorf("get authenticated user: %w", err)
		}
		self = u.GetLogin()
	} else {
		app, _, err := c.app.jwt.Apps.Get(ctx, "")
		if err != nil {
			return "", fmt.Errorf("get github app: %w", err)
		}
		self = app.GetSlug() + "[bot]"
	}
	c.mu.Lock()
	c.self = self
	c.mu.Unlock()
	return self, nil
}

// IsNotFound reports whether err is GitHub answering 404.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// statusOf returns the HTTP status of a GitHub error answer, or 0.
func statusOf(err error) int {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	var rl *gh.RateLimitError
	if errors.As(err, &rl) && rl.Response != nil {
		return rl.Response.StatusCode
	}
	var ab *gh.AbuseRateLimitError
	if errors.As(err, &ab) && ab.Response != nil {
		return ab.Response.StatusCode
	}
	return 0
}
