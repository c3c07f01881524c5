package github

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
)

func newTestClient(t *testing.T, fake *githubfake.Fake, mod func(*Options)) (*Client, *sleepRecorder) {
	t.Helper()
	sleeper := &sleepRecorder{}
	opts := Options{APIURL: fake.URL, Token: fake.Token, Retry: RetryPolicy{Sleep: sleeper.Sleep}}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, sleeper
}

// calls lists the fake's requests as "METHOD /path" lines.
func calls(reqs []githubfake.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

var acme = Repo{Owner: "acme", Name: "web"}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		err  string
	}{
		{"no auth", Options{}, "a token or an app id"},
		{"both", Options{Token: "x", AppID: 1, PrivateKey: []byte("k")}, "not both"},
		{"bad key", Options{AppID: 1, PrivateKey: []byte("not pem")}, "private key"},
		{"bad url", Options{Token: "x", APIURL: "not a url"}, "not an absolute URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
	// An Enterprise-style base is used exactly as given.
	c, err := New(Options{Token: "x", APIURL: "https://ghe.example.com/api/v3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.token.BaseURL.String(); got != "https://ghe.example.com/api/v3/" {
		t.Errorf("base URL = %s", got)
	}
}

func TestPullRequestReads(t *testing.T) {
	fake := githubfake.New(t)
	n1, sha1 := fake.OpenPR("acme/web", githubfake.PR{Title: "Add cart", Author: "alice", Labels: []string{"Preview"}, Files: githubfake.Files{"a": "1"}})
	n2, _ := fake.OpenPR("acme/web", githubfake.PR{Author: "mallory", HeadRepo: "mallory/web", Draft: true})
	n3, _ := fake.OpenPR("acme/web", githubfake.PR{Author: "bob", HeadRepo: "bob/web"})
	fake.DeleteHeadRepo("acme/web", n3)
	n4, _ := fake.OpenPR("acme/web", githubfake.PR{})
	fake.MergePR("acme/web", n4)
	c, _ := newTestClient(t, fake, nil)
	ctx := context.Background()

	pr, err := c.PullRequest(ctx, acme, n1)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Number != n1 || !pr.Open() || pr.Title != "Add cart" || pr.Author != "alice" || pr.HeadSHA != sha1 ||
		pr.HeadRepo != "acme/web" || pr.BaseRepo != "acme/web" || pr.FromFork() || !pr.HasLabel("preview") || pr.Draft || pr.UpdatedAt.IsZero() {
		t.Errorf("PR %d = %+v", n1, pr)
	}
	fork, err := c.PullRequest(ctx, acme, n2)
	if err != nil {
		t.Fatal(err)
	}
	if fork.HeadRepo != "mallory/web" || !fork.FromFork() || !fork.Draft {
		t.Errorf("fork PR = %+v", fork)
	}
	gone, err := c.PullRequest(ctx, acme, n3)
	if err != nil {
		t.Fatal(err)
	}
	if gone.HeadRepo != "" || !gone.FromFork() {
		t.Errorf("PR with deleted head repo = %+v", gone)
	}
	merged, err := c.PullRequest(ctx, acme, n4)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Open() || !merged.Merged || merged.State != "closed" {
		t.Errorf("merged PR = %+v", merged)
	}
	if _, err := c.PullRequest(ctx, acme, 999); !IsNotFound(err) {
		t.Errorf("missing PR: err = %v, want not found", err)
	}

	// Pagination: more open PRs than one page holds.
	for range 120 {
		fake.OpenPR("acme/web", githubfake.PR{})
	}
	fake.ResetRequests()
	open, err := c.OpenPullRequests(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 123 { // n1, n2, n3 and 120 new; n4 is merged
		t.Errorf("%d open PRs, want 123", len(open))
	}
	seen := map[int]bool{}
	for _, p := range open {
		if seen[p.Number] || p.Number == n4 {
			t.Errorf("PR %d listed twice or while closed", p.Number)
		}
		seen[p.Number] = true
	}
	if got := calls(fake.Requests()); len(got) != 2 {
		t.Errorf("listing took %v, want 2 pages", got)
	}
}

func TestPermissionFromCollaboratorAPICached(t *testing.T) {
	fake := githubfake.New(t)
	fake.AddRepo("acme/web", githubfake.RepoOptions{})
	fake.AddRepo("acme/secret", githubfake.RepoOptions{Private: true})
	roles := map[string]githubfake.Permission{
		"ada": githubfake.Admin, "max": githubfake.Maintain, "wes": githubfake.Write,
		"tia": githubfake.Triage, "rea": githubfake.Read,
	}
	for u, p := range roles {
		fake.SetPermission("acme/web", u, p)
	}
	c, _ := newTestClient(t, fake, func(o *Options) { o.PermissionTTL = time.Minute })
	now := time.Now()
	c.now = func() time.Time { return now }
	ctx := context.Background()
	want := map[string]Permission{"ada": PermissionAdmin, "max": PermissionMaintain, "wes": PermissionWrite,
		"tia": PermissionTriage, "rea": PermissionRead, "stranger": PermissionRead}
	writers := map[string]bool{"ada": true, "max": true, "wes": true}
	for user, perm := range want {
		got, err := c.Permission(ctx, acme, user)
		if err != nil {
			t.Fatal(err)
		}
		if got != perm {
			t.Errorf("%s: permission %q, want %q", user, got, perm)
		}
		if w, _ := c.CanWrite(ctx, acme, user); w != writers[user] {
			t.Errorf("%s: CanWrite = %v", user, w)
		}
	}
	if p, _ := c.Permission(ctx, Repo{Owner: "acme", Name: "secret"}, "stranger"); p != PermissionNone || p.CanWrite() {
		t.Errorf("stranger on a private repo: %q", p)
	}

	// Cached: a demotion is seen only after the TTL.
	fake.ResetRequests()
	fake.SetPermission("acme/web", "wes", githubfake.Read)
	if w, _ := c.CanWrite(ctx, acme, "WES"); !w {
		t.Error("cached permission not used (logins are case-insensitive)")
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests within the TTL, want 0", n)
	}
	now = now.Add(61 * time.Second)
	if w, _ := c.CanWrite(ctx, acme, "wes"); w {
		t.Error("demotion not seen after the TTL")
	}
	if got := calls(fake.Requests()); len(got) != 1 || got[0] != "GET /repos/acme/web/collaborators/wes/permission" {
		t.Errorf("requests = %v", got)
	}
}

func TestDownloadSource(t *testing.T) {
	fake := githubfake.New(t)
	_, sha := fake.OpenPR("acme/web", githubfake.PR{Files: githubfake.Files{
		"compose.yaml":    "services:\n  web:\n    build: .\n",
		"app/run.sh":      githubfake.Executable + "#!/bin/sh\necho hi\n",
		"app/config.json": "{}",
		"latest":          githubfake.Symlink + "app/config.json",
	}})
	c, _ := newTestClient(t, fake, nil)
	dst := filepath.Join(t.TempDir(), "src")
	stats, err := c.DownloadSource(context.Background(), acme, sha, dst, ExtractLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 3 || stats.Symlinks != 1 || stats.TopLevel != "acme-web-"+sha[:7] {
		t.Errorf("stats = %+v", stats)
	}
	for name, want := range map[string]string{"compose.yaml": "services:\n  web:\n    build: .\n", "app/run.sh": "#!/bin/sh\necho hi\n", "latest": "{}"} {
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", name, b, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "app/run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode = %v, %v", fi.Mode(), err)
	}

	reqs := fake.Requests()
	if got := calls(reqs); len(got) != 2 || got[0] != "GET /repos/acme/web/tarball/"+sha || got[1] != "GET /acme/web/legacy.tar.gz/"+sha {
		t.Fatalf("requests = %v", got)
	}
	if reqs[0].Authorization == "" || reqs[0].Host != "api" {
		t.Errorf("API request without credentials: %+v", reqs[0])
	}
	if reqs[1].Host != "codeload" || reqs[1].Authorization != "" {
		t.Errorf("credentials forwarded to the archive host: %q", reqs[1].Authorization)
	}

	// An unknown commit: clear error, nothing created.
	missing := filepath.Join(t.TempDir(), "missing")
	_, err = c.DownloadSource(context.Background(), acme, strings.Repeat("0", 40), missing, ExtractLimits{})
	if !IsNotFound(err) {
		t.Errorf("unknown SHA: err = %v, want not found", err)
	}
	if _, statErr := os.Lstat(missing); !os.IsNotExist(statErr) {
		t.Errorf("%s created on error", missing)
	}
	if _, err := c.DownloadSource(context.Background(), acme, "main; rm -rf /", missing, ExtractLimits{}); err == nil {
		t.Error("a non-SHA ref was accepted")
	}
	// Limits apply to downloads.
	_, err = c.DownloadSource(context.Background(), acme, sha, filepath.Join(t.TempDir(), "small"), ExtractLimits{MaxEntries: 2})
	if err == nil || !strings.Contains(err.Error(), "more than 2 entries") {
		t.Errorf("limits not applied: %v", err)
	}
}

func newAppClient(t *testing.T, fake *githubfake.Fake, key []byte) *Client {
	t.Helper()
	app := fake.App()
	if key == nil {
		key = app.PrivateKeyPEM
	}
	c, err := New(Options{APIURL: fake.URL, AppID: app.ID, PrivateKey: key, Retry: RetryPolicy{Sleep: (&sleepRecorder{}).Sleep}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAppAuthInstallationTokens(t *testing.T) {
	fake := githubfake.New(t)
	app := fake.App()
	fake.AddRepo("acme/web", githubfake.RepoOptions{Installation: 77})
	fake.AddRepo("other/api", githubfake.RepoOptions{Installation: 88})
	n, _ := fake.OpenPR("acme/web", githubfake.PR{})
	m, _ := fake.OpenPR("other/api", githubfake.PR{})
	fake.SetTokenTTL(30 * time.Second) // under ghinstallation's one-minute margin: refreshed on every use
	c := newAppClient(t, fake, nil)
	ctx := context.Background()

	// Resync path: no installation ID given, so the client asks GitHub.
	if _, err := c.PullRequest(ctx, acme, n); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	want := []string{"GET /repos/acme/web/installation", "POST /app/installations/77/access_tokens", fmt.Sprintf("GET /repos/acme/web/pulls/%d", n)}
	if got := calls(reqs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests = %v, want %v", got, want)
	}
	for _, r := range reqs[:2] {
		if !strings.HasPrefix(r.Authorization, "Bearer ") || strings.Count(r.Authorization, ".") != 2 || r.Status >= 300 {
			t.Errorf("%s %s: authorization %q, status %d; want an accepted App JWT", r.Method, r.Path, r.Authorization, r.Status)
		}
	}
	firstToken := reqs[2].Authorization
	if !strings.HasPrefix(firstToken, "token ghs_") || reqs[2].Status != 200 {
		t.Errorf("API call: authorization %q status %d, want an installation token", firstToken, reqs[2].Status)
	}

	// The token is about to expire: the next call refreshes it first.
	fake.ResetRequests()
	if _, err := c.PullRequest(ctx, acme, n); err != nil {
		t.Fatal(err)
	}
	reqs = fake.Requests()
	if got := calls(reqs); len(got) != 2 || got[0] != "POST /app/installations/77/access_tokens" {
		t.Fatalf("requests after expiry = %v", got)
	}
	if reqs[1].Authorization == firstToken {
		t.Error("the expired token was used again")
	}

	// A long-lived token is cached: no further exchange.
	fake.SetTokenTTL(time.Hour)
	if _, err := c.PullRequest(ctx, acme, n); err != nil { // refreshes the 30s token once more
		t.Fatal(err)
	}
	before := fake.TokenExchanges()
	for range 3 {
		if _, err := c.PullRequest(ctx, acme, n); err != nil {
			t.Fatal(err)
		}
	}
	if got := fake.TokenExchanges(); got != before {
		t.Errorf("%d token exchanges for cached calls", got-before)
	}

	// Event path: the installation ID comes with the event; no lookup.
	fake.ResetRequests()
	if _, err := c.PullRequest(ctx, Repo{Owner: "other", Name: "api", InstallationID: 88}, m); err != nil {
		t.Fatal(err)
	}
	if got := calls(fake.Requests()); len(got) != 2 || got[0] != "POST /app/installations/88/access_tokens" {
		t.Errorf("requests = %v", got)
	}
	// An installation's token does not open another installation's repository.
	_, err := c.PullRequest(ctx, Repo{Owner: "other", Name: "api", InstallationID: 77}, m)
	if statusOf(err) != 403 {
		t.Errorf("cross-installation call: err = %v, want 403", err)
	}

	// Comments by the App are recognised as its own ("<slug>[bot]").
	if self, err := c.login(ctx, acme); err != nil || self != app.BotLogin() {
		t.Errorf("login = %q, %v", self, err)
	}
}

func TestAppAuthWrongKeyRefused(t *testing.T) {
	fake := githubfake.New(t)
	fake.App()
	fake.AddRepo("acme/web", githubfake.RepoOptions{Installation: 77})
	n, _ := fake.OpenPR("acme/web", githubfake.PR{})
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := newAppClient(t, fake, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}))
	_, err = c.PullRequest(context.Background(), Repo{Owner: "acme", Name: "web", InstallationID: 77}, n)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a JWT signed with the wrong key was accepted: %v", err)
	}
	if fake.TokenExchanges() != 0 {
		t.Error("a token was minted for a bad JWT")
	}
}

func TestAppReinstalledIsLookedUpAgain(t *testing.T) {
	fake := githubfake.New(t)
	fake.App()
	fake.AddRepo("acme/web", githubfake.RepoOptions{Installation: 77})
	n, _ := fake.OpenPR("acme/web", githubfake.PR{})
	c := newAppClient(t, fake, nil)
	ctx := context.Background()
	if _, err := c.PullRequest(ctx, acme, n); err != nil {
		t.Fatal(err)
	}
	fake.Uninstall(77)
	fake.SetInstallation("acme/web", 99)
	if _, err := c.PullRequest(ctx, acme, n); statusOf(err) != 401 {
		t.Fatalf("call with the revoked token: %v, want 401", err)
	}
	fake.ResetRequests()
	if _, err := c.PullRequest(ctx, acme, n); err != nil {
		t.Fatalf("after reinstall: %v", err)
	}
	want := []string{"GET /repos/acme/web/installation", "POST /app/installations/99/access_tokens", fmt.Sprintf("GET /repos/acme/web/pulls/%d", n)}
	if got := calls(fake.Requests()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests = %v, want %v", got, want)
	}
}
