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
	SetFileTTL(ctx context.Context, project string, ttl *config.Duration) error
	Prune(ctx context.Context) (int, error)
	AcceptCommand(ctx context.Context, cmd store.Command) (bool, error)
	PendingCommands(ctx context.Context) ([]store.Command, error)
	CommandDone(ctx context.Context, delivery string) error
}

// RouteStates lets the proxy show a project's non-running phases.
type RouteStates interface {
	SetState(project string, hosts []string, st contract.RouteState) error
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
	// Shares makes share links for "/slipway share"; nil answers that
	// share links are not available.
	Shares Sharer
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
	shares   Sharer
	metrics  *metrics
	reports  *reports

	queue *Queue
	// The controller's state in memory, by concern, each with its own lock.
	intake intake    // what events asked for, until the key's next reconcile
	slots  admission // environment and build slots
	memory memory    // what this process's deploys left, and what is in flight
}

// New returns a Controller; Run starts it.
func New(o Options) (*Controller, error) {
	if o.Config == nil || o.GitHub == nil || o.Reporter == nil || o.Engine == nil || o.Store == nil {
		return nil, errors.New("controller: Config, GitHub, Reporter, Engine and Store are required")
	}
	c := &Controller{
		cfg: o.Config, gh: o.GitHub, reporter: o.Reporter, engine: o.Engine, store: o.Store,
		routes: o.Routes, lastReq: o.LastRequest, hosts: o.Hosts, dashURL: strings.TrimSuffix(o.DashboardURL, "/"),
		log: o.Logger, now: o.Now, workers: o.Workers, debounce: o.Debounce, limits: o.SourceLimits,
		queue:  NewQueue(time.Second, 5*time.Minute),
		intake: newIntake(),
		slots:  newAdmission(o.Config.Limits),
		memory: newMemory(),
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
	c.srcDir = filepath.Join(o.Config.StateDir, "src")
	c.mask = o.Masker
	c.shares = o.Shares
	if c.mask == nil {
		c.mask = NewMasker(o.Config.HeldSecrets())
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
			c.memory.cancelAll(ctx.Err())
			wg.Wait()
			// Send what GitHub has not been told yet, for a while.
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c.reports.flush(fctx)
			cancel()
			return nil
		case <-resyncT.C:
			c.resync(ctx)
		case <-lifeT.C:
			c.checkLifetimes()
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
