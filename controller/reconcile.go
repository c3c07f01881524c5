package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/internal/contract"
)

// Result tells the worker what to do after a reconcile that did not fail.
type Result struct {
	// RequeueAfter, when positive, reconciles the key again after it.
	RequeueAfter time.Duration
}

// request is one reconcile's view of a pull request: who it is, what the
// configuration says of its repository, what GitHub says of it now, and
// what it should therefore have. The verbs (deploy, teardown, ...) take it
// instead of a long list of parameters.
type request struct {
	key     Key
	repo    gh.Repo
	project string
	policy  config.RepoPolicy
	pr      gh.PullRequest
	want    desired
	// forced asks to redeploy although the environment is up to date.
	forced bool
}

// sha is the head SHA the request converges to.
func (r *request) sha() string { return r.pr.HeadSHA }

// Reconcile converges the environment of one pull request.
func (c *Controller) Reconcile(ctx context.Context, key Key) (Result, error) {
	repo, err := c.repoOf(key)
	if err != nil {
		return Result{}, nil // not a repository name: nothing to converge
	}
	r := &request{key: key, repo: repo, project: contract.ProjectName(repo.Owner, repo.Name, key.PR)}
	rp, configured := c.cfg.Repo(key.Repo)
	if !configured {
		return c.teardown(ctx, r, removal{reason: "the repository is no longer configured in Slipway"})
	}
	r.policy = rp
	if res, done, err := c.wakeFirst(ctx, r); done {
		return res, err
	}
	pr, err := c.gh.PullRequest(ctx, repo, key.PR)
	if gh.IsNotFound(err) {
		pr = gh.PullRequest{Number: key.PR, State: "closed"}
	} else if err != nil {
		return Result{}, fmt.Errorf("read pull request %s: %w", key, err)
	}
	r.pr = pr

	forced, done, err := c.applyCommands(ctx, r)
	if err != nil || done {
		return Result{}, err
	}
	r.forced = forced
	if r.want, err = c.desire(ctx, r); err != nil {
		return Result{}, err
	}
	switch {
	case r.want.keep:
		c.transition(ctx, r, transition{Phase: contract.PhaseFailed, SHA: r.sha(), Detail: r.want.reason,
			Failure: &failure{Step: "fetch source", Message: r.want.reason, Terminal: true}})
		return Result{}, nil
	case r.want.await:
		return c.awaitApproval(ctx, r)
	case !r.want.deploy:
		return c.teardown(ctx, r, removal{sha: r.sha(), reason: r.want.reason})
	}
	return c.converge(ctx, r)
}
