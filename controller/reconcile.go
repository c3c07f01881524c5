package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/proxy"
)

// Result tells the worker what to do after a reconcile that did not fail.
type Result struct {
	// RequeueAfter, when positive, reconciles the key again after it.
	RequeueAfter time.Duration
}

// DefaultTTL removes an environment after a week without a push, unless
// slipway.yaml or .slipway.yml says otherwise (0 disables).
const DefaultTTL = 7 * 24 * time.Hour

// heldPrefix marks a removal that must stick until the next push or an
// explicit redeploy (/slipway destroy, TTL expiry). retryPrefix marks a
// failure that is retried (the host's fault, not the PR's).
const (
	heldPrefix  = "held: "
	retryPrefix = "will retry: "
)

// desired is what a pull request should have.
type desired struct {
	deploy  bool
	trusted bool   // secrets may be given
	await   bool   // an untrusted fork PR waiting for approval
	keep    bool   // leave whatever runs as it is (head repository deleted)
	reason  string // why not deployed
}

// Reconcile converges the environment of one pull request.
func (c *Controller) Reconcile(ctx context.Context, key Key) (Result, error) {
	repo, err := c.repoOf(key)
	if err != nil {
		return Result{}, nil // not a repository name: nothing to converge
	}
	project := contract.ProjectName(repo.Owner, repo.Name, key.PR)
	rp, configured := c.cfg.Repo(key.Repo)
	if !configured {
		return c.teardown(ctx, key, repo, project, "", "the repository is no longer configured in Slipway", false)
	}
	pr, err := c.gh.PullRequest(ctx, repo, key.PR)
	if gh.IsNotFound(err) {
		pr = gh.PullRequest{Number: key.PR, State: "closed"}
	} else if err != nil {
		return Result{}, fmt.Errorf("read pull request %s: %w", key, err)
	}

	forced, done, err := c.applyCommands(ctx, key, repo, project, pr)
	if err != nil || done {
		return Result{}, err
	}
	d, err := c.desire(ctx, rp, repo, pr)
	if err != nil {
		return Result{}, err
	}
	switch {
	case d.keep:
		return Result{}, c.reportOnce(ctx, project, gh.Status{Repo: repo, PR: key.PR, SHA: pr.HeadSHA, Phase: gh.PhaseFailed, Reason: d.reason,
			Failure: &gh.Failure{Step: "fetch source", Log: d.reason}})
	case d.await:
		return c.awaitApproval(ctx, key, repo, project, pr, d.reason)
	case !d.deploy:
		return c.teardown(ctx, key, repo, project, pr.HeadSHA, d.reason, false)
	}
	return c.converge(ctx, key, rp, repo, project, pr, d, forced)
}

// desire decides what the pull request should have.
func (c *Controller) desire(ctx context.Context, rp config.RepoPolicy, repo gh.Repo, pr gh.PullRequest) (desired, error) {
	switch {
	case !pr.Open() && pr.Merged:
		return desired{reason: "the pull request was merged"}, nil
	case !pr.Open():
		return desired{reason: "the pull request was closed"}, nil
	case pr.Draft && !rp.Drafts:
		return desired{reason: "the pull request is a draft"}, nil
	}
	if label := rp.TriggerLabel(); label != "" && !pr.HasLabel(label) {
		return desired{reason: fmt.Sprintf("the pull request does not carry the %q label", label)}, nil
	}
	if pr.HeadRepo == "" {
		return desired{keep: true, reason: "the pull request's head repository was deleted, so its source cannot be fetched"}, nil
	}
	if !pr.FromFork() {
		return desired{deploy: true, trusted: true}, nil
	}
	switch rp.Forks {
	case config.ForksNever:
		return desired{reason: "pull requests from forks are not deployed (forks: never)"}, nil
	case config.ForksAlways:
		return desired{deploy: true}, nil
	}
	// forks: approve. The author's permission on the repository decides,
	// never author_association.
	can, err := c.gh.CanWrite(ctx, repo, pr.Author)
	if err != nil {
		return desired{}, fmt.Errorf("check permission of %s: %w", pr.Author, err)
	}
	if can {
		return desired{deploy: true, trusted: true}, nil
	}
	if _, ok, err := c.store.Approval(ctx, repo.String(), pr.Number, pr.HeadSHA); err != nil {
		return desired{}, fmt.Errorf("read approval: %w", err)
	} else if ok {
		return desired{deploy: true}, nil
	}
	return desired{await: true, reason: fmt.Sprintf("a fork pull request by @%s: a maintainer must approve commit %s", pr.Author, contract.ShortSHA(pr.HeadSHA))}, nil
}

// converge deploys the head SHA unless the environment already runs it.
func (c *Controller) converge(ctx context.Context, key Key, rp config.RepoPolicy, repo gh.Repo, project string, pr gh.PullRequest, d desired, forced bool) (Result, error) {
	sha := pr.HeadSHA
	st, err := c.store.Environment(ctx, project)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Result{}, fmt.Errorf("read history of %s: %w", project, err)
	}
	if !forced && !st.Removed.IsZero() && st.SHA == sha && strings.HasPrefix(st.Detail, heldPrefix) {
		return Result{}, nil // destroyed or expired at this SHA: wait for a push or a redeploy
	}
	if !forced && st.Phase == store.PhaseFailed && st.SHA == sha && !strings.HasPrefix(st.Detail, retryPrefix) {
		return Result{}, nil // the PR's own failure: not retried until the SHA changes
	}
	env, err := c.engine.Inspect(ctx, project)
	if err != nil {
		return Result{}, fmt.Errorf("inspect %s: %w", project, err)
	}
	if env != nil && env.SHA == sha && !forced {
		if st.Phase == store.PhaseSleeping {
			return c.sleeping(ctx, key, rp, repo, project, st)
		}
		if c.upToDate(project, sha, env) {
			return c.lifetimes(ctx, key, rp, repo, project, st)
		}
	}
	quiet := !forced && env != nil && env.SHA == sha && st.Phase == store.PhaseReady && st.SHA == sha
	if !quiet {
		if wait := c.debounceLeft(key); wait > 0 {
			return Result{RequeueAfter: wait}, nil
		}
		if env == nil {
			ok, detail, err := c.environmentSlot(ctx, key, project)
			if err != nil {
				return Result{}, err
			}
			if !ok {
				c.upsert(ctx, key, project, pr, st)
				c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseWaiting, SHA: sha, Detail: detail})
				c.report(ctx, gh.Status{Repo: repo, PR: key.PR, SHA: sha, Phase: gh.PhaseQueued, Reason: detail})
				return Result{RequeueAfter: 10 * time.Second}, nil
			}
		}
	}
	return c.deploy(ctx, key, rp, repo, project, pr, st, d, forced, quiet)
}

// upToDate reports whether this controller deployed sha to project and
// every container it left is still running (or completed).
func (c *Controller) upToDate(project, sha string, env *stack.Environment) bool {
	c.mu.Lock()
	cs, ok := c.converged[project]
	c.mu.Unlock()
	if !ok || cs.sha != sha || env.Phase() != "running" {
		return false
	}
	have := map[string]bool{}
	for _, s := range env.Services {
		for _, ct := range s.Containers {
			have[ct.Name] = true
		}
	}
	for _, name := range cs.containers {
		if !have[name] {
			return false
		}
	}
	return true
}

// debounceLeft is how long to wait until the key's events have been quiet
// for the debounce period. A lone event is not delayed: only a burst (an
// event within the debounce of the one before) waits for quiet.
func (c *Controller) debounceLeft(key Key) time.Duration {
	c.mu.Lock()
	last, burst := c.lastEvent[key], c.burst[key]
	c.mu.Unlock()
	if last.IsZero() || !burst {
		return 0
	}
	if left := c.debounce - c.now().Sub(last); left > 0 {
		return left
	}
	return 0
}

// environmentSlot decides whether a new environment may start under
// limits.environments; those over the limit wait in arrival order.
func (c *Controller) environmentSlot(ctx context.Context, key Key, project string) (bool, string, error) {
	projects, err := c.engine.Projects(ctx)
	if err != nil {
		return false, "", fmt.Errorf("count environments: %w", err)
	}
	// The limit is on this controller's environments: those of configured
	// repositories (not, say, what `slipway up` made on the same engine).
	running := 0
	for p, ref := range projects {
		if _, ok := c.cfg.Repo(ref.Repo); ok && p != project {
			running++
		}
	}
	limit := c.cfg.Limits.Environments
	c.mu.Lock()
	defer c.mu.Unlock()
	// Environments granted a slot are not on the engine until their build
	// is done: count them too.
	for p := range c.reserved {
		if _, onEngine := projects[p]; !onEngine && p != project {
			running++
		}
	}
	free := limit - running
	pos := slices.Index(c.envWaitlist, key)
	if pos < 0 {
		if free > 0 && len(c.envWaitlist) == 0 {
			c.reserved[project] = true
			return true, "", nil
		}
		pos = len(c.envWaitlist)
		c.envWaitlist = append(c.envWaitlist, key)
	}
	if pos < free {
		c.envWaitlist = slices.Delete(c.envWaitlist, pos, pos+1)
		c.reserved[project] = true
		return true, "", nil
	}
	return false, fmt.Sprintf("waiting: %d environments are running (limit %d); %d ahead in line", running, limit, pos), nil
}

// release ends project's reservation of an environment slot: once its
// deploy is over it is either on the engine or gone.
func (c *Controller) release(project string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reserved, project)
}

func (c *Controller) leaveWaitlist(key Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.envWaitlist, key); i >= 0 {
		c.envWaitlist = slices.Delete(c.envWaitlist, i, i+1)
	}
}

// deploy fetches, loads, builds and ups the head SHA. quiet re-converges an
// environment the history already shows ready at this SHA (after a restart,
// or to heal a removed container) without reporting the phases again.
func (c *Controller) deploy(ctx context.Context, key Key, rp config.RepoPolicy, repo gh.Repo, project string, pr gh.PullRequest, st store.Environment, d desired, forced, quiet bool) (Result, error) {
	sha := pr.HeadSHA
	// A build slot first, without holding a worker: over limits.builds the
	// PR says it waits and comes back.
	select {
	case c.builds <- struct{}{}:
		defer func() { <-c.builds }()
	default:
		detail := fmt.Sprintf("waiting for a build slot (limit %d)", cap(c.builds))
		if !quiet && !(st.Phase == store.PhaseWaiting && st.SHA == sha && st.Detail == detail) {
			c.upsert(ctx, key, project, pr, st)
			c.setRouteState(project, c.defaultHosts(repo, key.PR), proxy.State{Phase: proxy.PhaseQueued, Step: string(store.PhaseWaiting)})
			c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseWaiting, SHA: sha, Detail: detail})
			c.report(ctx, gh.Status{Repo: repo, PR: key.PR, SHA: sha, Phase: gh.PhaseQueued, Reason: detail})
		}
		return Result{RequeueAfter: 2 * time.Second}, nil
	}
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The deploy's own time counts from here, not the wait for a slot.
	if limit := c.cfg.BuildTimeout.D(); limit > 0 {
		var stop context.CancelFunc
		dctx, stop = context.WithTimeoutCause(dctx, limit, fmt.Errorf("%w (build_timeout %s)", errDeployTimeout, limit))
		defer stop()
	}
	c.mu.Lock()
	c.inflight[key] = &inflight{sha: sha, cancel: cancel}
	delete(c.forced, key)
	delete(c.burst, key)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
	}()

	c.upsert(ctx, key, project, pr, st)
	hosts := c.defaultHosts(repo, key.PR)
	status := gh.Status{Repo: repo, PR: key.PR, SHA: sha, LogURL: c.logURL(project, sha)}
	phase := func(p store.Phase, gp gh.Phase, pp proxy.Phase, detail string) {
		if quiet {
			return
		}
		c.setRouteState(project, hosts, proxy.State{Phase: pp, Step: string(p)})
		c.recordPhase(ctx, project, store.PhaseEntry{Phase: p, SHA: sha, Detail: detail})
		s := status
		s.Phase, s.Reason = gp, detail
		c.report(ctx, s)
	}
	defer c.release(project)
	start := c.now()
	phase(store.PhaseBuilding, gh.PhaseBuilding, proxy.PhaseBuilding, "")
	dir, err := c.source(dctx, repo, project, sha)
	if err != nil {
		return c.failed(ctx, dctx, key, repo, project, status, hosts, "fetch source", err)
	}
	secrets := map[string]string{}
	for name, s := range c.cfg.Secrets {
		secrets[name] = s.Value
	}
	plan, err := stack.Load(dctx, stack.Source{Dir: dir, Owner: repo.Owner, Repo: repo.Name, PR: key.PR, SHA: sha}, stack.LoadOptions{
		Hosts:           c.hosts,
		Policy:          c.cfg.PolicyFor(rp),
		Loader:          c.loader,
		Limits:          limitsFor(c.cfg.Limits, rp.Limits),
		Secrets:         secrets,
		WithholdSecrets: !d.trusted,
	})
	if err != nil {
		step := "load"
		var perr *stack.PolicyError
		if errors.As(err, &perr) {
			step = "policy"
		}
		return c.failed(ctx, dctx, key, repo, project, status, hosts, step, err)
	}
	if hs := routeHosts(plan); len(hs) > 0 {
		hosts = hs
	}
	for _, r := range plan.Routes {
		status.Services = append(status.Services, gh.Service{Name: r.Service, URL: r.URL, Primary: r.Primary})
	}
	log, err := c.store.NewBuildLog(ctx, project, sha)
	if err != nil {
		return Result{}, fmt.Errorf("open build log: %w", err)
	}
	buildLog := c.mask.Writer(log)
	c.metrics.builds.Inc()
	res, err := c.engine.Up(dctx, plan, stack.UpOptions{
		BuildLog:      buildLog,
		ForceRecreate: forced,
		OnPhase: func(p string) {
			if p == stack.PhaseDeploying {
				status.BuildDuration = c.now().Sub(start)
				c.metrics.buildSeconds.Observe(status.BuildDuration.Seconds())
				phase(store.PhaseDeploying, gh.PhaseDeploying, proxy.PhaseStarting, "")
			}
		},
		BeforeDeploy: func(ctx context.Context) error { return c.stillHead(ctx, repo, key.PR, sha) },
	})
	if cerr := log.Close(); cerr != nil {
		c.log.Warn("close build log", "project", project, "err", cerr)
	}
	if err != nil {
		step := "deploy"
		var be *stack.BuildError
		var je *stack.JobError
		switch {
		case errors.As(err, &be):
			step = "build"
		case errors.As(err, &je):
			step = "after_deploy"
		}
		return c.failed(ctx, dctx, key, repo, project, status, hosts, step, err)
	}
	if dctx.Err() != nil {
		// Superseded, closed or out of time as the deploy finished: never
		// publish it as ready.
		return c.failed(ctx, dctx, key, repo, project, status, hosts, "deploy", context.Cause(dctx))
	}
	c.metrics.deploySeconds.Observe(c.now().Sub(start).Seconds())
	var names []string
	if env, err := c.engine.Inspect(ctx, project); err == nil && env != nil {
		for _, s := range env.Services {
			for _, ct := range s.Containers {
				names = append(names, ct.Name)
			}
		}
	}
	c.mu.Lock()
	c.converged[project] = convergedState{sha: sha, containers: names, repo: plan.Repo, ready: c.now()}
	c.mu.Unlock()
	c.keepSources(project, sha, filepath.Base(dir))
	if quiet {
		if res.Changed() {
			c.log.Info("re-converged environment", "project", project, "sha", sha, "created", res.Created)
		}
		return Result{}, nil
	}
	c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseReady, SHA: sha})
	status.Phase = gh.PhaseReady
	if len(plan.WithheldSecrets) > 0 {
		status.Reason = "secrets withheld from this untrusted pull request: " + strings.Join(plan.WithheldSecrets, ", ")
	}
	c.report(ctx, status)
	if c.routes != nil {
		c.routes.ClearState(project)
	}
	c.log.Info("environment ready", "project", project, "sha", sha, "created", len(res.Created), "kept", len(res.Kept), "took", c.now().Sub(start).Round(time.Millisecond))
	return Result{}, nil
}

// stillHead checks, just before an environment changes, that sha is still
// the open PR's head; a newer push or a close aborts the deploy.
func (c *Controller) stillHead(ctx context.Context, repo gh.Repo, pr int, sha string) error {
	cur, err := c.gh.PullRequest(ctx, repo, pr)
	if gh.IsNotFound(err) {
		return errClosed
	}
	if err != nil {
		return fmt.Errorf("check the pull request's head: %w", err)
	}
	switch {
	case !cur.Open():
		return errClosed
	case cur.HeadSHA != sha:
		return errSuperseded
	}
	return nil
}

// failed records and reports a failed deploy. A deploy cancelled by a
// newer push or a close is not a failure: the key runs again and converges
// to the new state.
func (c *Controller) failed(ctx, dctx context.Context, key Key, repo gh.Repo, project string, status gh.Status, hosts []string, step string, err error) (Result, error) {
	cause := context.Cause(dctx)
	if errors.Is(err, errSuperseded) || errors.Is(err, errClosed) || errors.Is(cause, errSuperseded) || errors.Is(cause, errClosed) {
		c.log.Info("deploy abandoned", "project", project, "sha", status.SHA, "why", firstErr(cause, err))
		c.queue.Add(key)
		return Result{}, nil
	}
	if ctx.Err() != nil {
		return Result{}, ctx.Err() // shutting down: the next start converges
	}
	if errors.Is(cause, errDeployTimeout) {
		err = fmt.Errorf("%w: %v", cause, err)
	}
	terminal := errors.Is(err, stack.ErrBadInput) || errors.Is(cause, errDeployTimeout)
	var xe *gh.ExtractError
	if errors.As(err, &xe) {
		terminal = true
	}
	f := describeFailure(step, err)
	msg := c.mask.String(f.Message)
	detail := firstLine(msg)
	if !terminal {
		detail = retryPrefix + detail
	}
	c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseFailed, SHA: status.SHA, Detail: detail,
		Failure: &store.Failure{Step: f.Step, Service: f.Service, Message: msg}})
	status.Phase = gh.PhaseFailed
	status.Reason = firstLine(msg)
	status.Failure = &gh.Failure{Step: f.Step, Service: f.Service, Log: msg, Internal: !terminal}
	c.report(ctx, status)
	c.setRouteState(project, hosts, proxy.State{Phase: proxy.PhaseFailed, Step: f.Step, Service: f.Service, Reason: firstLine(msg)})
	c.metrics.failures.WithLabelValues(f.Step).Inc()
	c.log.Warn("deploy failed", "project", project, "sha", status.SHA, "step", f.Step, "service", f.Service, "terminal", terminal, "err", firstLine(msg))
	if terminal {
		return Result{}, nil
	}
	return Result{}, err
}

// failureInfo names where a deploy failed.
type failureInfo struct{ Step, Service, Message string }

func describeFailure(step string, err error) failureInfo {
	f := failureInfo{Step: step, Message: err.Error()}
	var se *stack.ServiceError
	var be *stack.BuildError
	var je *stack.JobError
	switch {
	case errors.As(err, &se):
		f.Service = se.Service
	case errors.As(err, &be):
		f.Service = be.Service
	case errors.As(err, &je):
		f.Service = je.Service
	}
	return f
}

// teardown removes the environment, if there is one or the history says
// there was, and reports it removed. held makes the removal stick until the
// next push or redeploy.
func (c *Controller) teardown(ctx context.Context, key Key, repo gh.Repo, project, sha, reason string, held bool) (Result, error) {
	c.leaveWaitlist(key)
	st, err := c.store.Environment(ctx, project)
	known := err == nil && (st.Removed.IsZero() || held)
	projects, err := c.engine.Projects(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("list projects: %w", err)
	}
	_, exists := projects[project]
	if !exists && !known {
		c.clearRoute(project)
		return Result{}, nil // nothing was ever deployed or reported: stay silent
	}
	c.release(project)
	// Down is idempotent: run it whenever the history says the environment
	// is not removed yet, since a half-done teardown may have left volumes
	// or images that Projects does not see.
	if exists || known {
		c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseRemoving, SHA: sha, Detail: reason})
		c.setRouteState(project, c.defaultHosts(repo, key.PR), proxy.State{Phase: proxy.PhaseRemoving, Reason: reason})
		start := c.now()
		if err := c.engine.Down(ctx, project); err != nil {
			return Result{}, fmt.Errorf("remove %s: %w", project, err)
		}
		c.metrics.downSeconds.Observe(c.now().Sub(start).Seconds())
	}
	if err := os.RemoveAll(filepath.Join(c.srcDir, project)); err != nil {
		c.log.Warn("remove sources", "project", project, "err", err)
	}
	c.mu.Lock()
	delete(c.converged, project)
	c.mu.Unlock()
	detail := reason
	if held {
		detail = heldPrefix + reason
	}
	if st.Removed.IsZero() || held || exists {
		if err := c.ensureRecorded(ctx, key, project); err != nil {
			c.log.Warn("record environment", "project", project, "err", err)
		} else {
			c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseRemoved, SHA: sha, Detail: detail})
		}
	}
	c.report(ctx, gh.Status{Repo: repo, PR: key.PR, SHA: sha, Phase: gh.PhaseRemoved, Reason: reason})
	c.clearRoute(project)
	c.log.Info("environment removed", "project", project, "sha", sha, "why", reason)
	return Result{}, nil
}

// awaitApproval reports, once per SHA, that a fork PR waits for approval,
// and removes an environment of an earlier approved SHA: a push needs a new
// approval.
func (c *Controller) awaitApproval(ctx context.Context, key Key, repo gh.Repo, project string, pr gh.PullRequest, reason string) (Result, error) {
	env, err := c.engine.Inspect(ctx, project)
	if err != nil {
		return Result{}, fmt.Errorf("inspect %s: %w", project, err)
	}
	if env != nil {
		if _, err := c.teardown(ctx, key, repo, project, env.SHA, "a new push needs a new approval", false); err != nil {
			return Result{}, err
		}
	}
	st, err := c.store.Environment(ctx, project)
	if err == nil && st.Phase == store.PhaseWaiting && st.SHA == pr.HeadSHA && st.Detail == reason {
		return Result{}, nil
	}
	c.upsert(ctx, key, project, pr, st)
	c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseWaiting, SHA: pr.HeadSHA, Detail: reason})
	c.report(ctx, gh.Status{Repo: repo, PR: key.PR, SHA: pr.HeadSHA, Phase: gh.PhaseAwaitingApproval, Reason: reason})
	return Result{}, nil
}

// lifetimes applies the TTL and sleep_after to an environment that is up
// to date.
func (c *Controller) lifetimes(ctx context.Context, key Key, rp config.RepoPolicy, repo gh.Repo, project string, st store.Environment) (Result, error) {
	c.mu.Lock()
	cs := c.converged[project]
	delete(c.wake, key) // awake already
	c.mu.Unlock()
	now := c.now()
	if expired, reason := c.expired(rp, cs, st); expired {
		return c.teardown(ctx, key, repo, project, st.SHA, reason, true)
	}
	if after := cs.repo.SleepAfter.D(); after > 0 && c.lastReq != nil {
		last, ok := c.lastReq(project)
		if !ok || last.Before(cs.ready) {
			last = cs.ready
		}
		if now.Sub(last) > after {
			if err := c.engine.Stop(ctx, project); err != nil {
				return Result{}, fmt.Errorf("put %s to sleep: %w", project, err)
			}
			c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseSleeping, SHA: st.SHA, Detail: fmt.Sprintf("idle for %s", humanDuration(now.Sub(last)))})
			c.log.Info("environment asleep", "project", project, "sha", st.SHA)
		}
	}
	return Result{}, nil
}

// expired reports whether the environment outlived its TTL (repos[].ttl,
// else .slipway.yml's ttl, else DefaultTTL; 0 disables) without a push,
// unless it is kept.
func (c *Controller) expired(rp config.RepoPolicy, cs convergedState, st store.Environment) (bool, string) {
	ttl := DefaultTTL
	if cs.repo.TTL != nil {
		ttl = cs.repo.TTL.D()
	}
	if rp.TTL != nil {
		ttl = rp.TTL.D()
	}
	lastPush := st.LastPush
	if lastPush.IsZero() {
		lastPush = st.Created
	}
	now := c.now()
	kept := st.Keep.Forever || now.Before(st.Keep.Until)
	if ttl <= 0 || kept || lastPush.IsZero() || now.Sub(lastPush) <= ttl {
		return false, ""
	}
	return true, fmt.Sprintf("removed after %s without a push; push again or comment /slipway redeploy to bring it back", humanDuration(ttl))
}

// sleeping keeps a sleeping environment asleep until a request wakes it,
// or its TTL removes it.
func (c *Controller) sleeping(ctx context.Context, key Key, rp config.RepoPolicy, repo gh.Repo, project string, st store.Environment) (Result, error) {
	c.mu.Lock()
	wake := c.wake[key]
	delete(c.wake, key)
	cs := c.converged[project]
	c.mu.Unlock()
	if !wake {
		if expired, reason := c.expired(rp, cs, st); expired {
			return c.teardown(ctx, key, repo, project, st.SHA, reason, true)
		}
		return Result{}, nil
	}
	if err := c.engine.Start(ctx, project); err != nil {
		return Result{}, fmt.Errorf("wake %s: %w", project, err)
	}
	c.mu.Lock()
	if cs, ok := c.converged[project]; ok {
		cs.ready = c.now()
		c.converged[project] = cs
	}
	c.mu.Unlock()
	env, _ := c.engine.Inspect(ctx, project)
	sha := ""
	if env != nil {
		sha = env.SHA
	}
	c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseReady, SHA: sha, Detail: "woken by a request"})
	c.log.Info("environment woken", "project", project, "sha", sha)
	return Result{}, nil
}

// limitsFor lowers the global container limits by a repo's own (never raises).
func limitsFor(global config.Limits, repo *config.Limits) config.Limits {
	if repo == nil {
		return global
	}
	out := global
	lower := func(g, r int64) int64 {
		if r > 0 && (g <= 0 || r < g) {
			return r
		}
		return g
	}
	out.Memory = config.ByteSize(lower(int64(global.Memory), int64(repo.Memory)))
	out.PIDs = lower(global.PIDs, repo.PIDs)
	out.LogSize = config.ByteSize(lower(int64(global.LogSize), int64(repo.LogSize)))
	if repo.CPUs > 0 && (global.CPUs <= 0 || repo.CPUs < global.CPUs) {
		out.CPUs = repo.CPUs
	}
	return out
}

// upsert records who the environment is for; LastPush moves when the head does.
func (c *Controller) upsert(ctx context.Context, key Key, project string, pr gh.PullRequest, st store.Environment) {
	info := store.EnvironmentInfo{Project: project, Repo: key.Repo, PR: key.PR, Title: pr.Title, Author: pr.Author, HeadRepo: pr.HeadRepo}
	if st.SHA != pr.HeadSHA || st.LastPush.IsZero() {
		info.LastPush = c.now()
	}
	if err := c.store.UpsertEnvironment(ctx, info); err != nil {
		c.log.Warn("record environment", "project", project, "err", err)
	}
}

// ensureRecorded makes sure the store knows project (for a teardown of an
// environment it never recorded, e.g. made before the store existed).
func (c *Controller) ensureRecorded(ctx context.Context, key Key, project string) error {
	if _, err := c.store.Environment(ctx, project); err == nil {
		return nil
	}
	return c.store.UpsertEnvironment(ctx, store.EnvironmentInfo{Project: project, Repo: key.Repo, PR: key.PR})
}

func (c *Controller) recordPhase(ctx context.Context, project string, e store.PhaseEntry) {
	e.Detail = c.mask.String(e.Detail)
	if err := c.store.RecordPhase(ctx, project, e); err != nil {
		c.log.Warn("record phase", "project", project, "sha", e.SHA, "phase", e.Phase, "err", err)
		return
	}
	c.metrics.setPhase(project, string(e.Phase))
}

// report queues a status for GitHub; it is sent off the deploy's path and
// retried until GitHub takes it (see reports).
func (c *Controller) report(_ context.Context, s gh.Status) { c.reports.send(s) }

// reportOnce reports a status unless the history already shows it.
func (c *Controller) reportOnce(ctx context.Context, project string, s gh.Status) error {
	st, err := c.store.Environment(ctx, project)
	if err == nil && st.Phase == store.PhaseFailed && st.SHA == s.SHA && st.Detail == s.Reason {
		return nil
	}
	if errors.Is(err, store.ErrNotFound) {
		if err := c.store.UpsertEnvironment(ctx, store.EnvironmentInfo{Project: project, Repo: s.Repo.String(), PR: s.PR}); err != nil {
			return fmt.Errorf("record environment: %w", err)
		}
	}
	c.recordPhase(ctx, project, store.PhaseEntry{Phase: store.PhaseFailed, SHA: s.SHA, Detail: s.Reason,
		Failure: &store.Failure{Step: s.Failure.Step, Message: s.Reason}})
	c.report(ctx, s)
	return nil
}

func (c *Controller) setRouteState(project string, hosts []string, st proxy.State) {
	if c.routes == nil || len(hosts) == 0 {
		return
	}
	if err := c.routes.SetState(project, hosts, st); err != nil {
		c.log.Warn("publish route state", "project", project, "err", err)
	}
}

func (c *Controller) clearRoute(project string) {
	if c.routes != nil {
		c.routes.ClearState(project)
	}
}

// defaultHosts is the primary host a PR gets under the default expose,
// used for status pages before the compose project is loaded.
func (c *Controller) defaultHosts(repo gh.Repo, pr int) []string {
	tmpl := c.hosts.PrimaryTemplate
	if tmpl == "" {
		tmpl = contract.PrimaryHostTemplate
	}
	h, err := contract.Host(tmpl, contract.HostData{Number: pr, Owner: repo.Owner, Repo: repo.Name, Domain: c.cfg.Domain})
	if err != nil {
		return nil
	}
	return []string{h}
}

func routeHosts(p *stack.Plan) []string {
	var out []string
	for _, r := range p.Routes {
		out = append(out, r.Host)
	}
	return out
}

func (c *Controller) logURL(project, sha string) string {
	if c.dashURL == "" {
		return ""
	}
	return c.dashURL + "/environments/" + project + "?sha=" + sha + "#build-log"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}
