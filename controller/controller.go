// Package controller is Slipway's reconciler: it turns pull requests into
// preview environments and keeps them converged.
//
// It is level-triggered, after controller-runtime. A webhook is only a hint
// that says "look at owner/repo#N again": Reconcile reads the desired state
// from GitHub (is the PR open, at which head SHA, does the trigger label
// apply, is the author trusted) and the observed state from Docker's labels,
// and converges — fetch the source, load and check the compose project,
// build, up; or down. The same path heals missed webhooks, redeliveries,
// controller restarts and a manual `docker rm`; a periodic resync enqueues
// every open PR and every environment on the engine.
//
// The work queue hands a key to one worker at a time and collapses repeated
// adds. A push cancels the in-flight build of an older SHA, a close cancels
// everything for the PR, and a build whose SHA is no longer the head is never
// published (the engine asks just before it changes anything).
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/proxy"
	"github.com/slipwayhq/slipway/webhooks"
)

// GitHub is what the controller asks of GitHub.
type GitHub interface {
	PullRequest(ctx context.Context, repo gh.Repo, number int) (gh.PullRequest, error)
	OpenPullRequests(ctx context.Context, repo gh.Repo) ([]gh.PullRequest, error)
	CanWrite(ctx context.Context, repo gh.Repo, user string) (bool, error)
	DownloadSource(ctx context.Context, repo gh.Repo, sha, dir string, limits gh.ExtractLimits) (gh.ExtractStats, error)
	CleanupDeployments(ctx context.Context, repo gh.Repo, open map[int]string) (gh.CleanupResult, error)
	React(ctx context.Context, repo gh.Repo, commentID int64, r gh.Reaction) error
	Comment(ctx context.Context, repo gh.Repo, pr int, body string) (int64, error)
	IssueEvents(ctx context.Context, repo gh.Repo, number int) ([]gh.IssueEvent, error)
}

// Reporter shows an environment's phases on the pull request.
type Reporter interface {
	Report(ctx context.Context, s gh.Status) error
}

// Engine runs environments.
type Engine interface {
	Up(ctx context.Context, p *stack.Plan, opts stack.UpOptions) (*stack.UpResult, error)
	Down(ctx context.Context, project string) error
	Inspect(ctx context.Context, project string) (*stack.Environment, error)
	Projects(ctx context.Context) (map[string]stack.ProjectRef, error)
	Stop(ctx context.Context, project string) error
	Start(ctx context.Context, project string) error
	WritableBinds(ctx context.Context, project string) ([]string, error)
}

// History records what happened (controller/store).
type History interface {
	UpsertEnvironment(ctx context.Context, info store.EnvironmentInfo) error
	RecordPhase(ctx context.Context, project string, e store.PhaseEntry) error
	Environment(ctx context.Context, project string) (store.Environment, error)
	Environments(ctx context.Context) ([]store.Environment, error)
	NewBuildLog(ctx context.Context, project, sha string) (*store.LogWriter, error)
	Approve(ctx context.Context, a store.Approval) error
	Approval(ctx context.Context, repo string, pr int, sha string) (store.Approval, bool, error)
	SetKeep(ctx context.Context, project string, k store.Keep) error
	Prune(ctx context.Context) (int, error)
	AcceptCommand(ctx context.Context, cmd store.Command) (bool, error)
	PendingCommands(ctx context.Context) ([]store.Command, error)
	CommandDone(ctx context.Context, delivery string) error
}

// RouteStates lets the proxy show a project's non-running phases.
type RouteStates interface {
	SetState(project string, hosts []string, st proxy.State) error
	ClearState(project string)
}

// Options configure a Controller.
type Options struct {
	Config   *config.Controller
	GitHub   GitHub
	Reporter Reporter
	Engine   Engine
	Store    History
	// Routes, if set, shows queued, building and failed pages on preview hosts.
	Routes RouteStates
	// LastRequest, if set, tells when a project last served a request (for sleep_after).
	LastRequest func(project string) (time.Time, bool)
	// Hosts say how preview URLs are formed (scheme, port, templates).
	Hosts stack.HostOptions
	// DashboardURL is the base of build log links on GitHub. Empty: no links.
	DashboardURL string
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	// Workers reconcile different PRs in parallel. Default 4.
	Workers int
	// Debounce delays a build until the PR's events have been quiet this
	// long, so a burst of pushes builds once. Default 1s.
	Debounce time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// SourceLimits bound a downloaded source archive.
	SourceLimits gh.ExtractLimits
	// Masker hides secrets in what the controller records and reports.
	// Default: one over the configured secrets, GitHub token and webhook secret.
	Masker *Masker
}

// Controller reconciles pull requests into environments.
type Controller struct {
	cfg      *config.Controller
	gh       GitHub
	reporter Reporter
	engine   Engine
	store    History
	routes   RouteStates
	lastReq  func(string) (time.Time, bool)
	hosts    stack.HostOptions
	loader   stack.ProjectLoader
	dashURL  string
	log      *slog.Logger
	now      func() time.Time
	workers  int
	debounce time.Duration
	srcDir   string
	limits   gh.ExtractLimits
	mask     *Masker
	metrics  *metrics
	reports  *reports

	queue  *Queue
	builds chan struct{} // build slots

	mu          sync.Mutex
	inflight    map[Key]*inflight
	commands    map[Key][]command
	lastEvent   map[Key]time.Time
	burst       map[Key]bool     // events arrived within the debounce of each other
	heads       map[Key]string   // the head SHA the latest pull_request event named
	install     map[string]int64 // repo → GitHub App installation
	forced      map[Key]bool     // redeploy requested
	wake        map[Key]bool     // a request arrived for a sleeping environment
	converged   map[string]convergedState
	envWaitlist []Key
	reserved    map[string]bool // projects granted an environment slot, deploying
	// redeploys are the deliveries of journaled redeploys, forgotten once the deploy starts.
	redeploys map[Key][]string
}

// inflight is a reconcile that is building or deploying.
type inflight struct {
	sha    string
	cancel context.CancelCauseFunc
}

// command is a ChatOps comment or an approval label waiting for the key's
// next reconcile (which checks the sender's permission first).
type command struct {
	action    string // a dashboard action: no permission check
	commentID int64
	body      string
	sender    string
	label     string // approval label applied
	headSHA   string
	delivery  string // the webhook delivery that carried it (journaled in the store)
}

// convergedState is what the last successful deploy of a project left.
type convergedState struct {
	sha        string
	containers []string
	repo       config.Repo
	ready      time.Time
}

var (
	errSuperseded    = errors.New("superseded by a newer push")
	errClosed        = errors.New("the pull request was closed")
	errDeployTimeout = errors.New("the deploy took too long")
)

// New returns a Controller; Run starts it.
func New(o Options) (*Controller, error) {
	if o.Config == nil || o.GitHub == nil || o.Reporter == nil || o.Engine == nil || o.Store == nil {
		return nil, errors.New("controller: Config, GitHub, Reporter, Engine and Store are required")
	}
	c := &Controller{
		cfg: o.Config, gh: o.GitHub, reporter: o.Reporter, engine: o.Engine, store: o.Store,
		routes: o.Routes, lastReq: o.LastRequest, hosts: o.Hosts, dashURL: strings.TrimSuffix(o.DashboardURL, "/"),
		log: o.Logger, now: o.Now, workers: o.Workers, debounce: o.Debounce, limits: o.SourceLimits,
		queue:    NewQueue(time.Second, 5*time.Minute),
		inflight: map[Key]*inflight{}, commands: map[Key][]command{}, lastEvent: map[Key]time.Time{}, burst: map[Key]bool{}, heads: map[Key]string{},
		install: map[string]int64{}, forced: map[Key]bool{}, wake: map[Key]bool{}, converged: map[string]convergedState{}, reserved: map[string]bool{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	loader, err := stack.NewLoader(o.Config.Loader, c.log)
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	c.loader = loader
	if c.workers <= 0 {
		c.workers = 4
	}
	if c.debounce == 0 {
		c.debounce = time.Second
	}
	// The templates the proxy checks routes against (serve builds it with
	// the same Config.HostTemplates), so a plan never declares a host the
	// proxy would refuse.
	c.hosts.Domain = o.Config.Domain
	tmpl := o.Config.HostTemplates()
	if c.hosts.PrimaryTemplate == "" {
		c.hosts.PrimaryTemplate = tmpl.Primary
	}
	if c.hosts.ServiceTemplate == "" {
		c.hosts.ServiceTemplate = tmpl.Service
	}
	c.builds = make(chan struct{}, max(1, o.Config.Limits.Builds))
	c.srcDir = filepath.Join(o.Config.StateDir, "src")
	secrets := map[string]string{}
	for name, s := range o.Config.Secrets {
		secrets[name] = s.Value
	}
	if g := o.Config.GitHub; g != nil {
		secrets["github token"] = g.Token
		secrets["webhook secret"] = g.WebhookSecret
	}
	c.mask = o.Masker
	if c.mask == nil {
		c.mask = NewMasker(secrets)
	}
	c.reports = newReports(c.reporter, c.log, c.mask.String)
	m, err := newMetrics(o.Registerer, c.queue)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	if err := c.loadCommands(context.Background()); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	return c, nil
}

// Mask returns the masker of the controller's secrets (for anything else
// that shows text to users).
func (c *Controller) Mask() *Masker { return c.mask }

// Run works the queue until ctx ends: workers, the periodic resync (which
// also runs once at start), and the TTL and sleep checks.
func (c *Controller) Run(ctx context.Context) error {
	if err := os.MkdirAll(c.srcDir, 0o700); err != nil {
		return fmt.Errorf("create source directory: %w", err)
	}
	var wg sync.WaitGroup
	for i := 0; i < c.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.worker(ctx)
		}()
	}
	resync := c.cfg.Resync.D()
	if resync <= 0 {
		resync = 5 * time.Minute
	}
	c.resync(ctx)
	resyncT := time.NewTicker(resync)
	lifeT := time.NewTicker(time.Minute)
	defer resyncT.Stop()
	defer lifeT.Stop()
	for {
		select {
		case <-ctx.Done():
			c.queue.ShutDown()
			c.cancelAll(ctx.Err())
			wg.Wait()
			// Send what GitHub has not been told yet, for a while.
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c.reports.flush(fctx)
			cancel()
			return nil
		case <-resyncT.C:
			c.resync(ctx)
		case <-lifeT.C:
			c.checkLifetimes(ctx)
		}
	}
}

func (c *Controller) worker(ctx context.Context) {
	for {
		key, ok := c.queue.Get(ctx)
		if !ok {
			return
		}
		start := c.now()
		res, err := c.Reconcile(ctx, key)
		c.metrics.reconcile.Observe(c.now().Sub(start).Seconds())
		switch {
		case err != nil && ctx.Err() == nil:
			d := c.queue.AddRateLimited(key)
			c.log.Warn("reconcile failed; retrying", "key", key.String(), "project", c.projectOf(key), "retry_in", d, "err", c.mask.String(err.Error()))
		case err == nil:
			c.queue.Forget(key)
			if res.RequeueAfter > 0 {
				c.queue.AddAfter(key, res.RequeueAfter)
			}
		}
		c.queue.Done(key)
	}
}

func (c *Controller) cancelAll(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.inflight {
		f.cancel(cause)
	}
}

// HandleEvent takes a verified webhook event (webhooks.Enqueuer). It never
// blocks: it records what the reconcile needs and enqueues the key; a push
// to a new SHA or a close cancels the PR's in-flight build.
func (c *Controller) HandleEvent(ev webhooks.Event) { c.handleEvent(ev, nil) }

// handleEvent is HandleEvent; journaled, when set, is ev's command as Record
// wrote it to the store.
func (c *Controller) handleEvent(ev webhooks.Event, journaled *command) {
	key := Key{Repo: canonicalRepo(c.cfg, ev.Repo), PR: ev.PR}
	if key.PR <= 0 {
		return
	}
	c.mu.Lock()
	if ev.InstallationID != 0 {
		c.install[strings.ToLower(key.Repo)] = ev.InstallationID
	}
	if last, ok := c.lastEvent[key]; ok && c.now().Sub(last) < c.debounce {
		c.burst[key] = true
	}
	c.lastEvent[key] = c.now()
	switch ev.Kind {
	case webhooks.KindPullRequest:
		if ev.HeadSHA != "" {
			c.heads[key] = ev.HeadSHA
		}
		f := c.inflight[key]
		switch {
		case f == nil:
		case ev.Action == "closed":
			f.cancel(errClosed)
		case ev.Action == "synchronize" && ev.HeadSHA != "" && ev.HeadSHA != f.sha:
			f.cancel(errSuperseded)
		}
	}
	if !c.addCommandLocked(key, ev, journaled) && ev.Kind == webhooks.KindIssueComment {
		c.mu.Unlock()
		return // an ordinary comment (or our own sticky one): nothing to do
	}
	c.mu.Unlock()
	c.metrics.events.WithLabelValues(ev.Kind).Inc()
	c.queue.Add(key)
}

// canonicalRepo returns the configured spelling of a repository name.
func canonicalRepo(cfg *config.Controller, name string) string {
	if r, ok := cfg.Repo(name); ok {
		return r.Name
	}
	return name
}

// Enqueue asks for a reconcile of key (the dashboard's actions, tests).
func (c *Controller) Enqueue(key Key) { c.queue.Add(key) }

// OnWake is the proxy's hook for a request to a sleeping environment.
func (c *Controller) OnWake(project string) {
	key, ok := c.keyOf(project)
	if !ok {
		return
	}
	c.mu.Lock()
	c.wake[key] = true
	c.mu.Unlock()
	c.queue.Add(key)
}

// keyOf finds the key of a project among the configured repos.
func (c *Controller) keyOf(project string) (Key, bool) {
	for _, r := range c.cfg.Repos {
		owner, name, _ := strings.Cut(r.Name, "/")
		prefix := contract.Sanitize(owner + "-" + name + "-pr-")
		if n, ok := strings.CutPrefix(project, prefix); ok {
			var pr int
			if _, err := fmt.Sscanf(n, "%d", &pr); err == nil && pr > 0 && contract.ProjectName(owner, name, pr) == project {
				return Key{Repo: r.Name, PR: pr}, true
			}
		}
	}
	return Key{}, false
}

// projectOf is the compose project of key.
func (c *Controller) projectOf(key Key) string {
	owner, name, _ := strings.Cut(key.Repo, "/")
	return contract.ProjectName(owner, name, key.PR)
}

// repoOf returns the GitHub repo of key with the installation last seen.
func (c *Controller) repoOf(key Key) (gh.Repo, error) {
	r, err := gh.ParseRepo(key.Repo)
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	r.InstallationID = c.install[strings.ToLower(key.Repo)]
	c.mu.Unlock()
	return r, nil
}

// resync enqueues every open PR of every configured repo, every project on
// the engine, and every environment the store does not know as removed, and
// marks stale deployments inactive.
func (c *Controller) resync(ctx context.Context) {
	keys := map[Key]bool{}
	for _, rp := range c.cfg.Repos {
		repo, err := c.repoOf(Key{Repo: rp.Name})
		if err != nil {
			continue
		}
		prs, err := c.gh.OpenPullRequests(ctx, repo)
		if err != nil {
			c.log.Warn("resync: list open pull requests", "repo", rp.Name, "err", err)
			continue
		}
		c.creditApprovalLabels(ctx, rp, repo, prs)
		open := map[int]string{}
		for _, pr := range prs {
			keys[Key{Repo: rp.Name, PR: pr.Number}] = true
			open[pr.Number] = pr.HeadSHA
		}
		if res, err := c.gh.CleanupDeployments(ctx, repo, open); err != nil {
			c.log.Warn("resync: clean up deployments", "repo", rp.Name, "err", err)
		} else if len(res.Inactivated) > 0 {
			c.log.Info("resync: marked stale deployments inactive", "repo", rp.Name, "count", len(res.Inactivated))
		}
	}
	if projects, err := c.engine.Projects(ctx); err != nil {
		c.log.Warn("resync: list projects", "err", err)
	} else {
		for project, ref := range projects {
			if _, ok := c.cfg.Repo(ref.Repo); ok && ref.PR > 0 {
				keys[Key{Repo: canonicalRepo(c.cfg, ref.Repo), PR: ref.PR}] = true
			} else {
				c.log.Debug("resync: project of an unconfigured repository left alone", "project", project)
			}
		}
	}
	if envs, err := c.store.Environments(ctx); err == nil {
		for _, e := range envs {
			if e.Removed.IsZero() && e.Repo != "" {
				if _, ok := c.cfg.Repo(e.Repo); ok {
					keys[Key{Repo: canonicalRepo(c.cfg, e.Repo), PR: e.PR}] = true
				}
			}
		}
	}
	if _, err := c.store.Prune(ctx); err != nil {
		c.log.Warn("resync: prune history", "err", err)
	}
	for k := range keys {
		c.queue.Add(k)
	}
}

// checkLifetimes enqueues environments whose TTL ran out or that have been
// idle longer than their sleep_after; Reconcile decides.
func (c *Controller) checkLifetimes(ctx context.Context) {
	c.mu.Lock()
	projects := make(map[string]convergedState, len(c.converged))
	for p, s := range c.converged {
		projects[p] = s
	}
	c.mu.Unlock()
	for project := range projects {
		if key, ok := c.keyOf(project); ok {
			c.queue.Add(key)
		}
	}
}
