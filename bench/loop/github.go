package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/webhooks"
)

// webhookSecret signs the benchmark's deliveries.
const webhookSecret = "bench-loop-webhook-secret"

// author opens every pull request; the fake gives them write access, so
// their PRs are trusted as a team member's are.
const author = "alice"

// cleanupTB is the testing.TB that githubfake.New asks for, outside a test.
// The fake only registers cleanups; they run on close, last first. Any
// other testing.TB method would panic on the nil embedded interface, which
// would be a change in the fake worth noticing.
type cleanupTB struct {
	testing.TB
	mu  sync.Mutex
	fns []func()
}

// Cleanup registers f to run on close.
func (t *cleanupTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fns = append(t.fns, f)
}

// Helper does nothing.
func (t *cleanupTB) Helper() {}

func (t *cleanupTB) close() {
	t.mu.Lock()
	fns := t.fns
	t.fns = nil
	t.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// gitHub is the fake GitHub serve talks to, optionally behind a proxy that
// adds latency to every request (API and archive downloads alike).
type gitHub struct {
	fake   *githubfake.Fake
	tb     *cleanupTB
	apiURL string // what serve is given as github.api_url
	delay  []*httptest.Server
}

func newGitHub(latency time.Duration, delayReports bool) (*gitHub, error) {
	tb := &cleanupTB{}
	g := &gitHub{fake: githubfake.New(tb), tb: tb}
	g.apiURL = g.fake.URL
	if latency <= 0 {
		return g, nil
	}
	// Archives: the API answers 302 to CodeloadURL; send that through a
	// delaying proxy too.
	codeload, err := delayingProxy(g.fake.CodeloadURL, latency, true, nil)
	if err != nil {
		return nil, err
	}
	api, err := delayingProxy(g.fake.URL, latency, delayReports, func(loc string) string {
		if rest, ok := strings.CutPrefix(loc, g.fake.CodeloadURL); ok {
			return codeload.URL + "/" + rest
		}
		return loc
	})
	if err != nil {
		codeload.Close()
		return nil, err
	}
	g.delay = []*httptest.Server{codeload, api}
	g.apiURL = api.URL + "/"
	return g, nil
}

// delayingProxy forwards to target after sleeping latency, rewriting
// Location headers through relocate. Without delayReports, the calls the
// controller makes to report phases (deployments, commit statuses,
// comments) are not delayed: what reporting off the critical path would
// give.
func delayingProxy(target string, latency time.Duration, delayReports bool, relocate func(string) string) (*httptest.Server, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", target, err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		ModifyResponse: func(r *http.Response) error {
			if loc := r.Header.Get("Location"); loc != "" && relocate != nil {
				r.Header.Set("Location", relocate(loc))
			}
			return nil
		},
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !delayReports && isReportCall(r.URL.Path) {
			rp.ServeHTTP(w, r)
			return
		}
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
	})), nil
}

// isReportCall reports whether an API path is one the Reporter uses.
func isReportCall(path string) bool {
	return strings.Contains(path, "/deployments") || strings.Contains(path, "/statuses/") || strings.Contains(path, "/comments")
}

func (g *gitHub) close() {
	for _, s := range g.delay {
		s.Close()
	}
	g.tb.close()
}

// requestCount is how many requests the fake has answered so far.
func (g *gitHub) requestCount() int { return len(g.fake.Requests()) }

// apiCallsSince lists the API requests answered since the from-th request,
// as "METHOD /path" with numbers replaced by N.
func (g *gitHub) apiCallsSince(from int) []string {
	var out []string
	for _, r := range g.fake.Requests()[from:] {
		if r.Host == "api" {
			out = append(out, r.Method+" "+numbersAsN(r.Path))
		}
	}
	return out
}

// numbersAsN replaces the path segments that are numbers or SHAs by N.
func numbersAsN(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789abcdef") == "" && (len(p) == 40 || strings.Trim(p, "0123456789") == "") {
			parts[i] = "N"
		}
	}
	return strings.Join(parts, "/")
}

// delivery is one signed webhook delivery, ready to send (any number of
// times: a redelivery repeats the ID and the body).
type delivery struct {
	ID     string
	Event  string
	Action string
	PR     int
	Body   []byte
}

// deliveries makes signed deliveries for one repository.
type deliveries struct {
	fake *githubfake.Fake
	repo string
	seq  atomic.Int64
	// prefix makes delivery IDs unique to this benchmark run.
	prefix string
}

// pullRequest is a pull_request delivery of action for PR n as GitHub
// sends it, with the PR as the fake shows it now (head SHA included).
func (d *deliveries) pullRequest(action string, n int) (delivery, error) {
	var pr map[string]any
	if err := json.Unmarshal(d.fake.PullRequestJSON(d.repo, n), &pr); err != nil {
		return delivery{}, fmt.Errorf("decode pull request %d: %w", n, err)
	}
	owner, name, _ := strings.Cut(d.repo, "/")
	body, err := json.Marshal(map[string]any{
		"action": action, "number": n, "pull_request": pr,
		"repository": map[string]any{"full_name": d.repo, "name": name, "owner": map[string]any{"login": owner}},
		"sender":     map[string]any{"login": author},
	})
	if err != nil {
		return delivery{}, fmt.Errorf("encode %s delivery: %w", action, err)
	}
	id := fmt.Sprintf("%s-%06d", d.prefix, d.seq.Add(1))
	return delivery{ID: id, Event: webhooks.KindPullRequest, Action: action, PR: n, Body: body}, nil
}

// sender posts deliveries to serve's webhook endpoint, each on a fresh
// connection, as GitHub does.
type sender struct {
	url    string
	client *http.Client
}

func newSender(addr string) *sender {
	return &sender{
		url: "http://" + addr + webhooks.Path,
		client: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{DisableKeepAlives: true, MaxIdleConnsPerHost: -1},
		},
	}
}

// sent is the outcome of one delivery.
type sent struct {
	Status  int
	Latency time.Duration // from the request to the end of the response
	Err     error
}

// send posts one delivery and times it from the request to the last byte
// of the response.
func (s *sender) send(d delivery) sent {
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(d.Body))
	if err != nil {
		return sent{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooks.HeaderEvent, d.Event)
	req.Header.Set(webhooks.HeaderDelivery, d.ID)
	req.Header.Set(webhooks.HeaderSignature, webhooks.Sign([]byte(webhookSecret), d.Body))
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return sent{Latency: time.Since(start), Err: err}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return sent{Status: resp.StatusCode, Latency: time.Since(start), Err: err}
}
