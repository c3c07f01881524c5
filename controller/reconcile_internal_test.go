package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/webhooks"
)

// memGitHub is GitHub for the reconciler's own logic: pull requests and
// files in memory, and what the controller said.
type memGitHub struct {
	mu      sync.Mutex
	prs     map[int]gh.PullRequest
	files   map[string]string // the source of every SHA
	writers map[string]bool
	replies []string
}

func (g *memGitHub) PullRequest(_ context.Context, _ gh.Repo, n int) (gh.PullRequest, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pr, ok := g.prs[n]
	if !ok {
		return pr, errors.New("no such pull request")
	}
	return pr, nil
}

func (g *memGitHub) OpenPullRequests(context.Context, gh.Repo) ([]gh.PullRequest, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []gh.PullRequest
	for _, pr := range g.prs {
		if pr.Open() {
			out = append(out, pr)
		}
	}
	return out, nil
}

func (g *memGitHub) CanWrite(_ context.Context, _ gh.Repo, user string) (bool, error) {
	return g.writers[user], nil
}

func (g *memGitHub) DownloadSource(_ context.Context, _ gh.Repo, _, dir string, _ gh.ExtractLimits) (gh.ExtractStats, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return gh.ExtractStats{}, err
	}
	for name, body := range g.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return gh.ExtractStats{}, err
		}
	}
	return gh.ExtractStats{Files: len(g.files)}, nil
}

func (g *memGitHub) CleanupDeployments(context.Context, gh.Repo, map[int]string) (gh.CleanupResult, error) {
	return gh.CleanupResult{}, nil
}
func (g *memGitHub) IssueEvents(context.Context, gh.Repo, int) ([]gh.IssueEvent, error) {
	return nil, nil
}
func (g *memGitHub) React(context.Context, gh.Repo, int64, gh.Reaction) error { return nil }
func (g *memGitHub) Comment(_ context.Context, _ gh.Repo, _ int, body string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.replies = append(g.replies, body)
	return 1, nil
}

// memEngine is an engine that runs nothing: it remembers what it was told.
type memEngine struct {
	mu      sync.Mutex
	envs    map[string]*stack.Environment
	stopped map[string]bool
	ups     int
	upErr   error
}

func (e *memEngine) Up(ctx context.Context, p *stack.Plan, o stack.UpOptions) (*stack.UpResult, error) {
	e.mu.Lock()
	e.ups++
	err := e.upErr
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	o.OnDeploying()
	if err := o.BeforeDeploy(ctx); err != nil {
		return nil, err
	}
	env := &stack.Environment{Project: p.Name, Repo: p.Source.Owner + "/" + p.Source.Repo, PR: p.Source.PR, SHA: p.Source.SHA}
	var created []string
	for name := range p.Project.Services {
		ct := contract.ContainerName(p.Name, name, 1)
		env.Services = append(env.Services, stack.ServiceState{Service: name, Containers: []stack.ContainerState{{Name: ct, State: "running"}}})
		created = append(created, ct)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.envs[p.Name] = env
	return &stack.UpResult{Project: p.Name, Created: created}, nil
}

func (e *memEngine) Down(_ context.Context, project string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.envs, project)
	return nil
}

func (e *memEngine) Inspect(_ context.Context, project string) (*stack.Environment, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	env, ok := e.envs[project]
	if !ok {
		return nil, nil
	}
	cp := *env
	if e.stopped[project] {
		cp.Services = nil
		for _, s := range env.Services {
			s.Containers = []stack.ContainerState{{Name: s.Containers[0].Name, State: "exited", ExitCode: 137}}
			cp.Services = append(cp.Services, s)
		}
	}
	return &cp, nil
}

func (e *memEngine) Projects(context.Context) (map[string]stack.ProjectRef, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]stack.ProjectRef{}
	for p, env := range e.envs {
		out[p] = stack.ProjectRef{Repo: env.Repo, PR: env.PR}
	}
	return out, nil
}

func (e *memEngine) Stop(_ context.Context, project string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped[project] = true
	return nil
}

func (e *memEngine) Start(_ context.Context, project string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.stopped, project)
	return nil
}

func (e *memEngine) WritableBinds(context.Context, string) ([]string, error) { return nil, nil }

// memWorld is a Controller over memGitHub, memEngine and a real store,
// with a clock the test moves.
type memWorld struct {
	c      *Controller
	gh     *memGitHub
	engine *memEngine
	store  *store.Store
	routes *recordingRoutes
	now    time.Time
	clock  sync.Mutex
}

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
)

func newMemWorld(t *testing.T, edit func(*config.Controller)) *memWorld {
	t.Helper()
	st, cfg := openTestStore(t), testConfig(t, edit)
	var err error
	w := &memWorld{
		gh: &memGitHub{prs: map[int]gh.PullRequest{}, writers: map[string]bool{"alice": true},
			files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx:1\n    ports: [\"8080\"]\n"}},
		engine: &memEngine{envs: map[string]*stack.Environment{}, stopped: map[string]bool{}},
		store:  st, routes: &recordingRoutes{}, now: time.Unix(1_000_000, 0),
	}
	w.c, err = New(Options{Config: &cfg, GitHub: w.gh, Reporter: &recordingReporter{}, Engine: w.engine, Store: st, Routes: w.routes,
		Now: w.Now, Debounce: time.Second, LastRequest: func(string) (time.Time, bool) { return time.Time{}, false }})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(w.c.srcDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *memWorld) Now() time.Time {
	w.clock.Lock()
	defer w.clock.Unlock()
	return w.now
}

func (w *memWorld) advance(d time.Duration) {
	w.clock.Lock()
	defer w.clock.Unlock()
	w.now = w.now.Add(d)
}

func (w *memWorld) open(n int, author, sha string, edit func(*gh.PullRequest)) {
	pr := gh.PullRequest{Number: n, State: "open", Author: author, HeadSHA: sha, HeadRepo: "acme/shop", BaseRepo: "acme/shop", Title: "PR"}
	if edit != nil {
		edit(&pr)
	}
	w.gh.mu.Lock()
	w.gh.prs[n] = pr
	w.gh.mu.Unlock()
}

func (w *memWorld) reconcile(t *testing.T, n int) Result {
	t.Helper()
	res, err := w.c.Reconcile(context.Background(), Key{"acme/shop", n})
	if err != nil {
		t.Fatalf("reconcile #%d: %v", n, err)
	}
	return res
}

func (w *memWorld) history(t *testing.T, n int) store.Environment {
	t.Helper()
	e, err := w.store.Environment(context.Background(), contract.ProjectName("acme", "shop", n))
	if err != nil {
		t.Fatalf("history of #%d: %v", n, err)
	}
	return e
}

// The life of a pull request through Reconcile, without Docker: deploy,
// up to date, a push, sleep and wake, TTL expiry held until the push,
// close.
func TestReconcileLifeOfAPullRequest(t *testing.T) {
	w := newMemWorld(t, nil)
	w.gh.files[".slipway.yml"] = "ttl: 2h\nsleep_after: 30m\n"
	w.open(1, "alice", sha1, nil)
	w.reconcile(t, 1)
	if e := w.history(t, 1); e.Phase != contract.PhaseReady || e.SHA != sha1 || e.FileTTL == nil || e.FileTTL.D() != 2*time.Hour {
		t.Fatalf("after the first reconcile: %s at %s, .slipway.yml ttl %v", e.Phase, e.SHA, e.FileTTL)
	}
	w.reconcile(t, 1) // up to date: nothing
	if w.engine.ups != 1 {
		t.Errorf("%d ups for one SHA", w.engine.ups)
	}
	w.advance(31 * time.Minute)
	w.reconcile(t, 1)
	if e := w.history(t, 1); e.Phase != contract.PhaseSleeping || !w.engine.stopped["acme-shop-pr-1"] {
		t.Fatalf("idle past sleep_after: %s", e.Phase)
	}
	w.reconcile(t, 1) // asleep, no request: stays asleep
	w.c.OnWake("acme-shop-pr-1")
	w.reconcile(t, 1)
	if e := w.history(t, 1); e.Phase != contract.PhaseReady || e.Detail != "woken by a request" || w.engine.stopped["acme-shop-pr-1"] {
		t.Fatalf("after a wake: %s %q", e.Phase, e.Detail)
	}
	w.advance(3 * time.Hour)
	w.reconcile(t, 1)
	if e := w.history(t, 1); e.Phase != contract.PhaseRemoved || !e.Held {
		t.Fatalf("past the .slipway.yml ttl: %s held %v", e.Phase, e.Held)
	}
	w.reconcile(t, 1) // held: not redeployed at this SHA
	if w.engine.ups != 1 {
		t.Errorf("an expired environment came back without a push (%d ups)", w.engine.ups)
	}
	w.open(1, "alice", sha2, nil)
	w.reconcile(t, 1)
	if e := w.history(t, 1); e.Phase != contract.PhaseReady || e.SHA != sha2 || w.engine.ups != 2 {
		t.Fatalf("after a push: %s at %s, %d ups", e.Phase, e.SHA, w.engine.ups)
	}
	w.open(1, "alice", sha2, func(p *gh.PullRequest) { p.State = "closed" })
	w.reconcile(t, 1)
	if e := w.history(t, 1); e.Phase != contract.PhaseRemoved || e.Held || len(w.engine.envs) != 0 {
		t.Fatalf("after a close: %s held %v, %d environments", e.Phase, e.Held, len(w.engine.envs))
	}
}

// Over limits.environments a PR waits in line, recorded once, and gets the
// slot when one frees up.
func TestReconcileWaitsForAnEnvironmentSlot(t *testing.T) {
	w := newMemWorld(t, func(c *config.Controller) { c.Limits.Environments = 1 })
	w.open(1, "alice", sha1, nil)
	w.open(2, "alice", sha2, nil)
	w.reconcile(t, 1)
	for range 5 {
		if res := w.reconcile(t, 2); res.RequeueAfter <= 0 {
			t.Fatal("a PR over the limit was not asked to come back")
		}
	}
	tl, _ := w.store.Timeline(context.Background(), "acme-shop-pr-2")
	if len(tl) != 1 || tl[0].Phase != contract.PhaseWaiting || tl[0].Wait != contract.WaitEnvironmentSlot {
		t.Errorf("timeline of the waiting PR %+v, want one waiting entry", tl)
	}
	w.open(1, "alice", sha1, func(p *gh.PullRequest) { p.State = "closed" })
	w.reconcile(t, 1)
	w.reconcile(t, 2)
	if e := w.history(t, 2); e.Phase != contract.PhaseReady {
		t.Errorf("after the slot freed: %s", e.Phase)
	}
}

// A fork PR waits for approval once per SHA; a writer's /slipway approve
// deploys it, without secrets.
func TestReconcileForkWaitsForApproval(t *testing.T) {
	w := newMemWorld(t, nil)
	w.open(3, "mallory", sha1, func(p *gh.PullRequest) { p.HeadRepo = "mallory/shop" })
	w.reconcile(t, 3)
	w.reconcile(t, 3)
	tl, _ := w.store.Timeline(context.Background(), "acme-shop-pr-3")
	if len(tl) != 1 || tl[0].Wait != contract.WaitApproval {
		t.Fatalf("timeline %+v, want one wait for approval", tl)
	}
	w.c.HandleEvent(webhooks.Event{Kind: webhooks.KindIssueComment, Repo: "acme/shop", PR: 3, Comment: &webhooks.Comment{ID: 1, Body: "/slipway approve", Author: "alice"}})
	w.reconcile(t, 3)
	if e := w.history(t, 3); e.Phase != contract.PhaseReady {
		t.Fatalf("after approval: %s %q", e.Phase, e.Detail)
	}
	w.c.HandleEvent(webhooks.Event{Kind: webhooks.KindIssueComment, Repo: "acme/shop", PR: 3, Comment: &webhooks.Comment{ID: 2, Body: "/slipway destroy", Author: "alice"}})
	w.reconcile(t, 3)
	if e := w.history(t, 3); e.Phase != contract.PhaseRemoved || !e.Held || !strings.Contains(e.Detail, "/slipway destroy") {
		t.Fatalf("after destroy: %s held %v %q", e.Phase, e.Held, e.Detail)
	}
}

// A failure of the engine is retried; the PR's own is held until a push.
func TestReconcileFailures(t *testing.T) {
	w := newMemWorld(t, nil)
	w.open(4, "alice", sha1, nil)
	w.engine.upErr = errors.New("engine unreachable")
	if _, err := w.c.Reconcile(context.Background(), Key{"acme/shop", 4}); err == nil {
		t.Fatal("an engine failure was not returned for a retry")
	}
	if e := w.history(t, 4); e.Phase != contract.PhaseFailed || !e.Retry {
		t.Fatalf("after an engine failure: %s retry %v", e.Phase, e.Retry)
	}
	w.engine.upErr = nil
	w.reconcile(t, 4)
	if e := w.history(t, 4); e.Phase != contract.PhaseReady {
		t.Fatalf("the retry: %s", e.Phase)
	}
	w.gh.files["compose.yaml"] = "services:\n  web:\n    image: nginx:1\n    privileged: true\n"
	w.open(4, "alice", sha2, nil)
	w.reconcile(t, 4)
	e := w.history(t, 4)
	if e.Phase != contract.PhaseFailed || e.Retry || e.LastError == nil || e.LastError.Step != "policy" {
		t.Fatalf("a policy refusal: %s retry %v error %+v", e.Phase, e.Retry, e.LastError)
	}
	ups := w.engine.ups
	w.reconcile(t, 4)
	if w.engine.ups != ups {
		t.Error("the PR's own failure was retried at the same SHA")
	}
}

// A draft, or a PR without the trigger label, has no environment.
func TestReconcileNothingForDraftsAndUnlabelled(t *testing.T) {
	w := newMemWorld(t, func(c *config.Controller) { c.Repos[0].Trigger = "label:preview" })
	w.open(5, "alice", sha1, nil)
	w.reconcile(t, 5)
	if len(w.engine.envs) != 0 {
		t.Fatal("deployed without the trigger label")
	}
	w.open(5, "alice", sha1, func(p *gh.PullRequest) { p.Labels = []string{"preview"} })
	w.reconcile(t, 5)
	if len(w.engine.envs) != 1 {
		t.Fatal("not deployed with the trigger label")
	}
	w.open(5, "alice", sha1, func(p *gh.PullRequest) { p.Labels = nil })
	w.reconcile(t, 5)
	if e := w.history(t, 5); e.Phase != contract.PhaseRemoved || !strings.Contains(e.Detail, "label") {
		t.Errorf("after the label went: %s %q", e.Phase, e.Detail)
	}
}

// A /slipway destroy voids a redeploy asked for before it (one the
// debounce deferred): the destroyed environment stays destroyed.
func TestDestroyVoidsAPendingRedeploy(t *testing.T) {
	w := newMemWorld(t, nil)
	ctx := context.Background()
	w.open(1, "alice", sha1, nil)
	w.reconcile(t, 1)
	comment := func(id int64, body string) webhooks.Event {
		return webhooks.Event{DeliveryID: fmt.Sprint("d", id), Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 1,
			Comment: &webhooks.Comment{ID: id, Body: body, Author: "alice"}}
	}
	if _, err := w.c.Record(ctx, comment(1, "/slipway redeploy")); err != nil {
		t.Fatal(err)
	}
	// A second event at once: a burst, so the debounce defers the redeploy.
	w.c.HandleEvent(webhooks.Event{DeliveryID: "e", Kind: webhooks.KindPullRequest, Action: "edited", Repo: "acme/shop", PR: 1, HeadSHA: sha1})
	if res := w.reconcile(t, 1); res.RequeueAfter <= 0 {
		t.Fatal("the redeploy was not deferred")
	}
	if _, err := w.c.Record(ctx, comment(2, "/slipway destroy")); err != nil {
		t.Fatal(err)
	}
	w.reconcile(t, 1)
	w.advance(time.Minute)
	w.reconcile(t, 1) // the next look (a resync)
	if env, _ := w.engine.Inspect(ctx, "acme-shop-pr-1"); env != nil {
		t.Error("the destroyed environment came back")
	}
	if e := w.history(t, 1); e.Phase != contract.PhaseRemoved || !e.Held {
		t.Errorf("history %s held %v, want removed and held", e.Phase, e.Held)
	}
	if pending, _ := w.store.PendingCommands(ctx); len(pending) != 0 {
		t.Errorf("pending commands %+v, want none", pending)
	}
}
