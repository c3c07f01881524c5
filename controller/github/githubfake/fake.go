// Package githubfake is an in-process GitHub for tests: an httptest server
// implementing the REST calls Slipway makes, with GitHub's JSON shapes,
// driven from the test and recording every request it receives.
//
//	fake := githubfake.New(t)
//	num, sha := fake.OpenPR("acme/web", githubfake.PR{Author: "alice", Files: githubfake.Files{"compose.yaml": "..."}})
//	client, _ := github.New(github.Options{APIURL: fake.URL, Token: fake.Token})
//	...
//	fake.Push("acme/web", num, githubfake.Files{...})   // new head SHA
//	fake.ClosePR("acme/web", num)
//	reqs := fake.Requests()                           // method, path, decoded body
//	deps := fake.Deployments("acme/web")              // with their statuses
//
// What it serves (paths relative to URL):
//
//	GET    user                                           the token's user
//	GET    app                                            the App (JWT)
//	POST   app/installations/{id}/access_tokens           installation token (JWT)
//	GET    repos/{o}/{r}/installation                     the repo's installation (JWT)
//	GET    repos/{o}/{r}/pulls[?state=open|closed|all]    paginated
//	GET    repos/{o}/{r}/pulls/{n}
//	GET    repos/{o}/{r}/collaborators/{user}/permission
//	GET    repos/{o}/{r}/tarball/{ref}                    302 to CodeloadURL
//	GET    repos/{o}/{r}/deployments[?sha&ref&task&environment]  newest first, paginated
//	POST   repos/{o}/{r}/deployments
//	GET    repos/{o}/{r}/deployments/{id}
//	GET    repos/{o}/{r}/deployments/{id}/statuses        newest first, paginated
//	POST   repos/{o}/{r}/deployments/{id}/statuses
//	POST   repos/{o}/{r}/statuses/{sha}
//	GET    repos/{o}/{r}/commits/{ref}/statuses
//	GET    repos/{o}/{r}/issues/{n}/events                oldest first, paginated
//	GET    repos/{o}/{r}/issues/{n}/comments              oldest first, paginated
//	POST   repos/{o}/{r}/issues/{n}/comments
//	GET    repos/{o}/{r}/issues/comments/{id}
//	PATCH  repos/{o}/{r}/issues/comments/{id}
//	DELETE repos/{o}/{r}/issues/comments/{id}
//	POST   repos/{o}/{r}/issues/comments/{id}/reactions
//
// Authentication is checked as GitHub does: a personal access token (Token,
// or AddToken), an installation token minted by access_tokens and valid for
// that installation's repositories until its expires_at (SetTokenTTL), or, for
// the App endpoints, an RS256 JWT signed with the App's key (App()). Bodies
// are validated the way GitHub validates them (states, 140-character
// descriptions, required_contexts against failing commit statuses, ...), so
// a client sending the wrong shape fails here too.
//
// Faults: RateLimit, SecondaryRateLimit, ServerErrors and InjectFault make the
// next matching requests fail; DeleteDeployment and DeleteComment simulate a
// user removing things.
package githubfake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultToken is the personal access token every fake accepts, acting as DefaultLogin.
const (
	DefaultToken = "ghp_fakeslipwaytoken"
	DefaultLogin = "slipway-bot"
)

// Fake is an in-process GitHub. Its methods are safe for concurrent use.
type Fake struct {
	// URL is the REST API base, with a trailing slash: give it to the client
	// as its API URL.
	URL string
	// CodeloadURL is the archive host tarball requests redirect to (a second
	// server, so a client forwarding credentials across hosts is caught).
	CodeloadURL string
	// Token is a valid personal access token (DefaultToken).
	Token string
	// WebURL is the web host (github.com), with a trailing slash: where
	// the OAuth web flow's authorize and access_token endpoints live.
	WebURL string

	api, codeload, web *httptest.Server
	oauth              oauthState
	members            map[string]bool // "org/login" and "org/team/login", lower case

	mu         sync.Mutex
	nextID     int64
	repos      map[string]*repo // by lower-case full name
	tokens     map[string]string
	instTokens map[string]*instToken
	installs   map[int64]bool
	tokenTTL   time.Duration
	exchanges  int
	app        *App
	faults     []*Fault
	requests   []Request
	archives   map[string]string // one-time codeload token → "owner/repo@sha"
}

// App is the fake's GitHub App.
type App struct {
	ID   int64
	Slug string
	// PrivateKeyPEM is the App's RSA private key, to give to the client.
	PrivateKeyPEM []byte
	key           *rsa.PrivateKey
}

// BotLogin is the login the App's installation tokens act as.
func (a App) BotLogin() string { return a.Slug + "[bot]" }

type instToken struct {
	installation int64
	expires      time.Time
}

// Request is one request the fake received.
type Request struct {
	// Host is "api", "codeload" or "web".
	Host   string
	Method string
	// Path is the URL path, e.g. /repos/acme/web/deployments.
	Path  string
	Query url.Values
	// Authorization is the header as received ("" when absent).
	Authorization string
	// Body is the decoded JSON body (nil when there is none).
	Body map[string]any
	// Status is the status code the fake answered.
	Status int
}

// New starts a fake GitHub on the loopback address; it is closed when the
// test ends.
func New(t testing.TB) *Fake {
	t.Helper()
	return NewOn(t, "127.0.0.1")
}

// NewOn is New with the fake's servers (API, codeload, web) listening on
// ip (port chosen by the system), and their URLs naming it: for a client
// that does not share the test's loopback, such as Slipway in a container
// reaching the host at its bridge gateway's address.
func NewOn(t testing.TB, ip string) *Fake {
	t.Helper()
	f := &Fake{
		Token:      DefaultToken,
		nextID:     1000,
		repos:      map[string]*repo{},
		tokens:     map[string]string{DefaultToken: DefaultLogin},
		instTokens: map[string]*instToken{},
		installs:   map[int64]bool{},
		tokenTTL:   time.Hour,
		archives:   map[string]string{},
	}
	serve := func(h http.Handler) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("githubfake: listen on %s: %v", ip, err)
		}
		s.Listener.Close()
		s.Listener = l
		s.Start()
		return s
	}
	f.api = serve(f.record("api", http.HandlerFunc(f.serveAPI)))
	f.codeload = serve(f.record("codeload", http.HandlerFunc(f.serveCodeload)))
	f.web = serve(f.record("web", http.HandlerFunc(f.serveWeb)))
	f.URL = f.api.URL + "/"
	f.CodeloadURL = f.codeload.URL + "/"
	f.WebURL = f.web.URL + "/"
	f.oauth = oauthState{clientID: OAuthClientID, clientSecret: OAuthClientSecret, codes: map[string]*oauthCode{}}
	t.Cleanup(func() {
		f.api.Close()
		f.codeload.Close()
		f.web.Close()
	})
	return f
}

// App returns the fake's GitHub App (ID 4242, slug "slipway-test"), creating
// its key on first use.
func (f *Fake) App() App {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.app == nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("githubfake: generate app key: %v", err))
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		f.app = &App{ID: 4242, Slug: "slipway-test", PrivateKeyPEM: pemKey, key: key}
	}
	return *f.app
}

// AddToken makes token a valid personal access token acting as login.
func (f *Fake) AddToken(token, login string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = login
}

// SetTokenTTL sets the lifetime of installation tokens minted from now on
// (default 1h). ghinstallation refreshes a token one minute before it
// expires, so a TTL under a minute makes every request refresh.
func (f *Fake) SetTokenTTL(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenTTL = d
}

// TokenExchanges counts the installation tokens minted so far.
func (f *Fake) TokenExchanges() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exchanges
}

// RepoOptions describes a repository.
type RepoOptions struct {
	// Installation is the App installation covering the repo (0: none).
	Installation int64
	// Private repos give non-collaborators permission "none" instead of "read".
	Private bool
}

type repo struct {
	owner, name  string
	id           int64
	opts         RepoOptions
	prs          map[int]*pr
	commits      map[string]Files
	deployments  []*deployment // creation order
	statuses     map[string][]*commitStatus
	comments     []*comment // creation order
	perms        map[string]Permission
	deletedHeads map[int]bool
	events       []*IssueEvent // issue events, oldest first
}

func (r *repo) fullName() string { return r.owner + "/" + r.name }

// AddRepo creates (or reconfigures) a repository. Repositories named by
// other calls are created on first use with zero options.
func (f *Fake) AddRepo(fullName string, opts RepoOptions) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoLocked(fullName)
	r.opts = opts
	if opts.Installation != 0 {
		f.installs[opts.Installation] = true
	}
}

// SetInstallation sets the App installation covering the repository.
func (f *Fake) SetInstallation(fullName string, installation int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoLocked(fullName).opts.Installation = installation
	if installation != 0 {
		f.installs[installation] = true
	}
}

// Uninstall removes an App installation, as uninstalling the App does: its
// tokens stop working and its repositories have no installation until
// SetInstallation gives them one.
func (f *Fake) Uninstall(installation int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.installs, installation)
	for tok, it := range f.instTokens {
		if it.installation == installation {
			delete(f.instTokens, tok)
		}
	}
	for _, r := range f.repos {
		if r.opts.Installation == installation {
			r.opts.Installation = 0
		}
	}
}

func (f *Fake) repoLocked(fullName string) *repo {
	key := strings.ToLower(fullName)
	if r, ok := f.repos[key]; ok {
		return r
	}
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" {
		panic(fmt.Sprintf("githubfake: repository %q: want owner/name", fullName))
	}
	r := &repo{
		owner: owner, name: name, id: f.id(),
		prs: map[int]*pr{}, commits: map[string]Files{}, statuses: map[string][]*commitStatus{},
		perms: map[string]Permission{}, deletedHeads: map[int]bool{},
	}
	f.repos[key] = r
	return r
}

func (f *Fake) mustRepo(fullName string) *repo {
	r, ok := f.repos[strings.ToLower(fullName)]
	if !ok {
		panic(fmt.Sprintf("githubfake: no repository %q", fullName))
	}
	return r
}

func (f *Fake) id() int64 {
	f.nextID++
	return f.nextID
}

// Files is a tree of files: path → content, mode 0644.
type Files map[string]string

// Executable, as a content prefix, makes the file mode 0755 in the tarball;
// the prefix itself is stripped. Symlink, as a prefix, makes the entry a
// symlink to the rest of the value.
const (
	Executable = "\x00exec\x00"
	Symlink    = "\x00link\x00"
)

// PR describes a pull request to open.
type PR struct {
	// Number; default the next free one.
	Number int
	Title  string
	// Author is the login that opened it. Default "octocat".
	Author string
	// Branch is the head ref. Default "feature-<n>".
	Branch string
	// Base is the base ref. Default "main".
	Base string
	// HeadRepo is the full name of a fork the PR comes from; "" means the
	// base repository itself.
	HeadRepo string
	Draft    bool
	Labels   []string
	// Files is the head commit's tree.
	Files Files
}

type pr struct {
	PR
	state            string
	merged           bool
	headSHA          string
	created, updated time.Time
	closed, mergedAt time.Time
	commits          int
}

// PullRequest is a snapshot of a pull request's state.
type PullRequest struct {
	Number   int
	State    string
	Merged   bool
	Draft    bool
	HeadSHA  string
	HeadRepo string // "" when deleted
	Labels   []string
	Author   string
	Title    string
}

// OpenPR opens a pull request with one commit holding p.Files and returns
// its number and head SHA.
func (f *Fake) OpenPR(fullName string, p PR) (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoLocked(fullName)
	if p.Number == 0 {
		p.Number = 1
		for _, existing := range r.prs {
			p.Number = max(p.Number, existing.Number+1)
		}
	}
	if _, dup := r.prs[p.Number]; dup {
		panic(fmt.Sprintf("githubfake: %s#%d already exists", fullName, p.Number))
	}
	if p.Author == "" {
		p.Author = "octocat"
	}
	if p.Branch == "" {
		p.Branch = fmt.Sprintf("feature-%d", p.Number)
	}
	if p.Base == "" {
		p.Base = "main"
	}
	if p.Title == "" {
		p.Title = fmt.Sprintf("Change %d", p.Number)
	}
	p.Labels = slices.Clone(p.Labels)
	now := now()
	x := &pr{PR: p, state: "open", created: now, updated: now}
	r.prs[p.Number] = x
	x.headSHA = f.commitLocked(r, x, p.Files)
	return p.Number, x.headSHA
}

// Push makes a new head commit holding files (the whole tree) on the pull
// request, as a push to its branch does, and returns the new head SHA.
func (f *Fake) Push(fullName string, number int, files Files) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	x := f.mustPR(r, number)
	x.headSHA = f.commitLocked(r, x, files)
	x.updated = now()
	return x.headSHA
}

func (f *Fake) commitLocked(r *repo, x *pr, files Files) string {
	x.commits++
	h := sha1.New()
	fmt.Fprintf(h, "%s#%d/%d/%d\n", r.fullName(), x.Number, x.commits, f.id())
	for _, k := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%s\x00%s\x00", k, files[k])
	}
	sha := hex.EncodeToString(h.Sum(nil))
	tree := Files{}
	for k, v := range files {
		tree[k] = v
	}
	r.commits[sha] = tree
	return sha
}

func (f *Fake) mustPR(r *repo, number int) *pr {
	x, ok := r.prs[number]
	if !ok {
		panic(fmt.Sprintf("githubfake: no pull request %s#%d", r.fullName(), number))
	}
	return x
}

// ClosePR closes a pull request without merging it.
func (f *Fake) ClosePR(fullName string, number int) { f.setState(fullName, number, "closed", false) }

// MergePR merges and closes a pull request.
func (f *Fake) MergePR(fullName string, number int) { f.setState(fullName, number, "closed", true) }

// ReopenPR reopens a closed pull request.
func (f *Fake) ReopenPR(fullName string, number int) { f.setState(fullName, number, "open", false) }

func (f *Fake) setState(fullName string, number int, state string, merged bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.mustPR(f.mustRepo(fullName), number)
	x.state, x.merged, x.updated = state, merged, now()
	x.closed, x.mergedAt = time.Time{}, time.Time{}
	if state == "closed" {
		x.closed = x.updated
		if merged {
			x.mergedAt = x.updated
		}
	}
}

// SetDraft marks a pull request draft or ready for review.
func (f *Fake) SetDraft(fullName string, number int, draft bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.mustPR(f.mustRepo(fullName), number)
	x.Draft, x.updated = draft, now()
}

// SetLabels replaces a pull request's labels.
func (f *Fake) SetLabels(fullName string, number int, labels ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.mustPR(f.mustRepo(fullName), number)
	x.Labels, x.updated = slices.Clone(labels), now()
}

// DeleteHeadRepo deletes the fork a pull request comes from: GitHub then
// reports head.repo as null.
func (f *Fake) DeleteHeadRepo(fullName string, number int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	f.mustPR(r, number)
	r.deletedHeads[number] = true
}

// PullRequest returns a snapshot of a pull request.
func (f *Fake) PullRequest(fullName string, number int) PullRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	x := f.mustPR(r, number)
	head := x.HeadRepo
	if head == "" {
		head = r.fullName()
	}
	if r.deletedHeads[number] {
		head = ""
	}
	return PullRequest{Number: x.Number, State: x.state, Merged: x.merged, Draft: x.Draft, HeadSHA: x.headSHA,
		HeadRepo: head, Labels: slices.Clone(x.Labels), Author: x.Author, Title: x.Title}
}

// PullRequestJSON is the pull request as the REST API and the pull_request
// webhook payload show it, for building webhook deliveries in tests.
func (f *Fake) PullRequestJSON(fullName string, number int) json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	b, err := json.Marshal(f.pullJSON(r, f.mustPR(r, number), true))
	if err != nil {
		panic(err)
	}
	return b
}

// Permission is a collaborator role.
type Permission string

// The repository roles.
const (
	Admin    Permission = "admin"
	Maintain Permission = "maintain"
	Write    Permission = "write"
	Triage   Permission = "triage"
	Read     Permission = "read"
	None     Permission = "none"
)

// SetPermission gives user a role on the repository.
func (f *Fake) SetPermission(fullName, user string, p Permission) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoLocked(fullName).perms[strings.ToLower(user)] = p
}

// Comment is an issue comment.
type Comment struct {
	ID        int64
	PR        int
	Author    string
	Body      string
	Reactions []Reaction
}

// Reaction is a reaction on a comment.
type Reaction struct {
	User    string
	Content string
}

type comment struct {
	Comment
	created, updated time.Time
}

// AddComment posts a comment as author and returns its ID.
func (f *Fake) AddComment(fullName string, number int, author, body string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	f.mustPR(r, number)
	return f.addCommentLocked(r, number, author, body).ID
}

func (f *Fake) addCommentLocked(r *repo, number int, author, body string) *comment {
	t := now()
	c := &comment{Comment: Comment{ID: f.id(), PR: number, Author: author, Body: body}, created: t, updated: t}
	r.comments = append(r.comments, c)
	return c
}

// EditComment replaces a comment's body, as a user editing it would.
func (f *Fake) EditComment(fullName string, id int64, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.mustComment(f.mustRepo(fullName), id)
	c.Body, c.updated = body, now()
}

// DeleteComment deletes a comment, as a user would.
func (f *Fake) DeleteComment(fullName string, id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	f.mustComment(r, id)
	r.comments = slices.DeleteFunc(r.comments, func(c *comment) bool { return c.ID == id })
}

func (f *Fake) mustComment(r *repo, id int64) *comment {
	for _, c := range r.comments {
		if c.ID == id {
			return c
		}
	}
	panic(fmt.Sprintf("githubfake: no comment %d in %s", id, r.fullName()))
}

// Comments returns the comments on a pull request, oldest first.
func (f *Fake) Comments(fullName string, number int) []Comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Comment
	for _, c := range f.mustRepo(fullName).comments {
		if c.PR == number {
			cc := c.Comment
			cc.Reactions = slices.Clone(c.Reactions)
			out = append(out, cc)
		}
	}
	return out
}

// Deployment is a deployment with its statuses.
type Deployment struct {
	ID                    int64
	SHA, Ref, Task        string
	Environment           string
	Description           string
	Payload               any
	TransientEnvironment  bool
	ProductionEnvironment bool
	Creator               string
	// Statuses oldest first.
	Statuses []DeploymentStatus
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	ID             int64
	State          string
	Description    string
	EnvironmentURL string
	LogURL         string
	Creator        string
}

// LatestState is the state of the newest status, "" without statuses.
func (d Deployment) LatestState() string {
	if len(d.Statuses) == 0 {
		return ""
	}
	return d.Statuses[len(d.Statuses)-1].State
}

type deployment struct {
	Deployment
	created time.Time
}

// AddDeployment records a deployment (and its statuses) as if made earlier,
// e.g. by a previous controller run, and returns its ID. Zero fields get
// GitHub's defaults: task "deploy", environment "production".
func (f *Fake) AddDeployment(fullName string, d Deployment) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoLocked(fullName)
	if d.Task == "" {
		d.Task = "deploy"
	}
	if d.Environment == "" {
		d.Environment = "production"
	}
	if d.Ref == "" {
		d.Ref = d.SHA
	}
	if d.Creator == "" {
		d.Creator = DefaultLogin
	}
	d.ID = f.id()
	d.Statuses = slices.Clone(d.Statuses)
	for i := range d.Statuses {
		d.Statuses[i].ID = f.id()
		if d.Statuses[i].Creator == "" {
			d.Statuses[i].Creator = d.Creator
		}
	}
	r.deployments = append(r.deployments, &deployment{Deployment: d, created: now()})
	return d.ID
}

// DeleteDeployment deletes a deployment: later calls about it answer 404.
func (f *Fake) DeleteDeployment(fullName string, id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	r.deployments = slices.DeleteFunc(r.deployments, func(d *deployment) bool { return d.ID == id })
}

// Deployments returns the repository's deployments, oldest first.
func (f *Fake) Deployments(fullName string) []Deployment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Deployment
	for _, d := range f.mustRepo(fullName).deployments {
		dd := d.Deployment
		dd.Statuses = slices.Clone(d.Statuses)
		out = append(out, dd)
	}
	return out
}

// CommitStatus is one commit status.
type CommitStatus struct {
	ID          int64
	State       string
	TargetURL   string
	Description string
	Context     string
	Creator     string
}

type commitStatus struct {
	CommitStatus
	created time.Time
}

// CommitStatuses returns the statuses posted on sha, oldest first.
func (f *Fake) CommitStatuses(fullName, sha string) []CommitStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []CommitStatus
	for _, s := range f.mustRepo(fullName).statuses[sha] {
		out = append(out, s.CommitStatus)
	}
	return out
}

// SetCommitStatus posts a commit status as another tool would (e.g. a
// failing CI check).
func (f *Fake) SetCommitStatus(fullName, sha string, s CommitStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.repoLocked(fullName)
	s.ID = f.id()
	if s.Context == "" {
		s.Context = "default"
	}
	r.statuses[sha] = append(r.statuses[sha], &commitStatus{CommitStatus: s, created: now()})
}

// Requests returns every request received so far, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// ResetRequests forgets the requests received so far.
func (f *Fake) ResetRequests() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

// Fault makes matching requests fail.
type Fault struct {
	// Count is how many requests fail.
	Count int
	// Status is the answer: 403 with RateLimitReset is a primary rate limit,
	// 403 or 429 with RetryAfter a secondary one, anything else a plain error.
	Status int
	// RateLimitReset, for a primary rate limit, is how far in the future
	// X-RateLimit-Reset lies.
	RateLimitReset time.Duration
	// RetryAfter, for a secondary rate limit, is sent as Retry-After.
	RetryAfter time.Duration
	// Method and PathPrefix, when set, restrict the fault to matching
	// requests (path as in Request.Path).
	Method, PathPrefix string
}

// InjectFault queues a fault; faults apply in the order queued.
func (f *Fake) InjectFault(ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &ft)
}

// RateLimit makes the next n API requests answer 403 with
// X-RateLimit-Remaining: 0 and X-RateLimit-Reset reset from now.
func (f *Fake) RateLimit(n int, reset time.Duration) {
	f.InjectFault(Fault{Count: n, Status: http.StatusForbidden, RateLimitReset: reset})
}

// SecondaryRateLimit makes the next n API requests answer 429 with Retry-After.
func (f *Fake) SecondaryRateLimit(n int, retryAfter time.Duration) {
	f.InjectFault(Fault{Count: n, Status: http.StatusTooManyRequests, RetryAfter: retryAfter})
}

// ServerErrors makes the next n API requests answer 500.
func (f *Fake) ServerErrors(n int) {
	f.InjectFault(Fault{Count: n, Status: http.StatusInternalServerError})
}

// ClearFaults drops the faults still queued.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// PendingFaults counts the failures still queued.
func (f *Fake) PendingFaults() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ft := range f.faults {
		n += ft.Count
	}
	return n
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func sortedComments(cs []*comment) []*comment {
	out := slices.Clone(cs)
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
