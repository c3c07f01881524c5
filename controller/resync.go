package controller

import "context"

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
		for _, pr := range prs {
			c.intake.seedHead(Key{Repo: rp.Name, PR: pr.Number}, pr.HeadSHA)
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
func (c *Controller) checkLifetimes() {
	for _, project := range c.memory.projects() {
		if key, ok := c.keyOf(project); ok {
			c.queue.Add(key)
		}
	}
}
