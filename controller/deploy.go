package controller

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// deploy fetches, loads, builds and ups the head SHA. quiet re-converges an
// environment the history already shows ready at this SHA (after a restart,
// or to heal a removed container) without reporting the phases again.
func (c *Controller) deploy(ctx context.Context, r *request, st store.Environment, quiet bool) (Result, error) {
	sha := r.sha()
	// A build slot first, without holding a worker: over limits.builds the
	// PR says it waits and comes back.
	releaseBuild, ok := c.slots.tryBuild()
	if !ok {
		if !quiet {
			c.upsert(ctx, r, st)
			c.transition(ctx, r, transition{Phase: contract.PhaseWaiting, Wait: contract.WaitBuildSlot, SHA: sha,
				Detail: fmt.Sprintf("waiting for a build slot (limit %d)", c.slots.buildLimit())})
		}
		return Result{RequeueAfter: 2 * time.Second}, nil
	}
	defer releaseBuild()
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The deploy's own time counts from here, not the wait for a slot.
	if limit := c.cfg.BuildTimeout.D(); limit > 0 {
		var stop context.CancelFunc
		dctx, stop = context.WithTimeoutCause(dctx, limit, fmt.Errorf("%w (build_timeout %s)", errDeployTimeout, limit))
		defer stop()
	}
	defer c.memory.start(r.key, sha, cancel)()
	c.intake.deployStarted(r.key)
	defer c.slots.release(r.project)

	c.upsert(ctx, r, st)
	hosts := c.defaultHosts(r.repo, r.key.PR)
	status := gh.Status{LogURL: c.logURL(r.project, sha)}
	phase := func(p contract.Phase) {
		if !quiet {
			c.transition(ctx, r, transition{Phase: p, SHA: sha, Hosts: hosts, Status: status})
		}
	}
	start := c.now()
	phase(contract.PhaseBuilding)
	dir, err := c.source(dctx, r.repo, r.project, sha)
	if err != nil {
		return c.failed(ctx, dctx, r, hosts, status, "fetch source", err)
	}
	plan, err := stack.Load(dctx, stack.Source{Dir: dir, Owner: r.repo.Owner, Repo: r.repo.Name, PR: r.key.PR, SHA: sha}, stack.LoadOptions{
		Hosts:           c.hosts,
		Policy:          c.cfg.PolicyFor(r.policy),
		OwnRegistry:     c.cfg.OwnRegistry(),
		Loader:          c.loader,
		Limits:          limitsFor(c.cfg.Limits, r.policy.Limits),
		Secrets:         c.cfg.PreviewSecrets(),
		WithholdSecrets: !r.want.trusted,
	})
	if err != nil {
		return c.failed(ctx, dctx, r, hosts, status, "load", err)
	}
	if hs := routeHosts(plan); len(hs) > 0 {
		hosts = hs
	}
	for _, rt := range plan.Routes {
		status.Services = append(status.Services, gh.Service{Name: rt.Service, URL: rt.URL, Primary: rt.Primary})
	}
	log, err := c.store.NewBuildLog(ctx, r.project, sha)
	if err != nil {
		return Result{}, fmt.Errorf("open build log: %w", err)
	}
	c.metrics.builds.Inc()
	res, err := c.engine.Up(dctx, plan, stack.UpOptions{
		BuildLog:      c.mask.Writer(log),
		ForceRecreate: r.forced,
		OnDeploying: func() {
			status.BuildDuration = c.now().Sub(start)
			c.metrics.buildSeconds.Observe(status.BuildDuration.Seconds())
			phase(contract.PhaseDeploying)
		},
		BeforeDeploy: func(ctx context.Context) error { return c.stillHead(ctx, r) },
	})
	if cerr := log.Close(); cerr != nil {
		c.log.Warn("close build log", "project", r.project, "err", cerr)
	}
	if err != nil {
		return c.failed(ctx, dctx, r, hosts, status, "deploy", err)
	}
	if dctx.Err() != nil {
		// Superseded, closed or out of time as the deploy finished: never
		// publish it as ready.
		return c.failed(ctx, dctx, r, hosts, status, "deploy", context.Cause(dctx))
	}
	c.metrics.deploySeconds.Observe(c.now().Sub(start).Seconds())
	var names []string
	if env, err := c.engine.Inspect(ctx, r.project); err == nil && env != nil {
		for _, s := range env.Services {
			for _, ct := range s.Containers {
				names = append(names, ct.Name)
			}
		}
	}
	c.memory.setConverged(r.project, convergedState{sha: sha, containers: names, repo: plan.Repo, ready: c.now()})
	// The TTL the repository asked for, where the dashboard and a restarted
	// controller read it.
	if err := c.store.SetFileTTL(ctx, r.project, plan.Repo.TTL); err != nil {
		c.log.Warn("record the .slipway.yml ttl", "project", r.project, "err", err)
	}
	c.keepSources(r.project, sha, filepath.Base(dir))
	if quiet {
		if res.Changed() {
			c.log.Info("re-converged environment", "project", r.project, "sha", sha, "created", res.Created)
		}
		return Result{}, nil
	}
	ready := transition{Phase: contract.PhaseReady, SHA: sha, Status: status}
	if len(plan.WithheldSecrets) > 0 {
		ready.Detail = "secrets withheld from this untrusted pull request: " + strings.Join(plan.WithheldSecrets, ", ")
	}
	c.transition(ctx, r, ready)
	c.log.Info("environment ready", "project", r.project, "sha", sha, "created", len(res.Created), "kept", len(res.Kept), "took", c.now().Sub(start).Round(time.Millisecond))
	return Result{}, nil
}

// stillHead checks, just before an environment changes, that the
// request's SHA is still the open PR's head; a newer push or a close
// aborts the deploy.
func (c *Controller) stillHead(ctx context.Context, r *request) error {
	cur, err := c.gh.PullRequest(ctx, r.repo, r.key.PR)
	if gh.IsNotFound(err) {
		return errClosed
	}
	if err != nil {
		return fmt.Errorf("check the pull request's head: %w", err)
	}
	switch {
	case !cur.Open():
		return errClosed
	case cur.HeadSHA != r.sha():
		return errSuperseded
	}
	return nil
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
func (c *Controller) upsert(ctx context.Context, r *request, st store.Environment) {
	info := store.EnvironmentInfo{Project: r.project, Repo: r.key.Repo, PR: r.key.PR, Title: r.pr.Title, Author: r.pr.Author, HeadRepo: r.pr.HeadRepo}
	if st.SHA != r.sha() || st.LastPush.IsZero() {
		info.LastPush = c.now()
	}
	if err := c.store.UpsertEnvironment(ctx, info); err != nil {
		c.log.Warn("record environment", "project", r.project, "err", err)
	}
}
