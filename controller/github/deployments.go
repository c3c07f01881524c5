package github

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/slipwayhq/slipway/internal/contract"
)

// DeploymentTask is the task of every deployment Slipway creates; lookups
// and the cleanup only ever consider deployments with this task, so other
// tools' deployments are never touched.
const DeploymentTask = "deploy:slipway"

// DeploymentState is the state of a deployment status.
type DeploymentState string

// The deployment status states GitHub accepts.
const (
	DeploymentQueued     DeploymentState = "queued"
	DeploymentInProgress DeploymentState = "in_progress"
	DeploymentSuccess    DeploymentState = "success"
	DeploymentFailure    DeploymentState = "failure"
	DeploymentError      DeploymentState = "error"
	DeploymentInactive   DeploymentState = "inactive"
)

// maxDescription is GitHub's limit for status descriptions.
const maxDescription = 140

// Environment returns the deployment environment of a pull request:
// "pr-<N>", or "pr-<N>/<service>" when service is not empty (one per exposed
// service when there are several).
func Environment(pr int, service string) string {
	env := "pr-" + strconv.Itoa(pr)
	if service != "" {
		env += "/" + service
	}
	return env
}

// ParseEnvironment is the inverse of Environment; ok is false for any other
// environment name.
func ParseEnvironment(env string) (pr int, service string, ok bool) {
	rest, found := strings.CutPrefix(env, "pr-")
	if !found {
		return 0, "", false
	}
	num, service, _ := strings.Cut(rest, "/")
	if num == "" || num[0] == '0' || strings.TrimLeft(num, "0123456789") != "" {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || strings.Contains(env, "/") && service == "" {
		return 0, "", false
	}
	return n, service, true
}

// Deployment is a GitHub deployment record.
type Deployment struct {
	ID          int64
	SHA         string
	Environment string
	Task        string
	CreatedAt   time.Time
}

func deploymentFrom(d *gh.Deployment) Deployment {
	return Deployment{ID: d.GetID(), SHA: d.GetSHA(), Environment: d.GetEnvironment(), Task: d.GetTask(), CreatedAt: d.GetCreatedAt().Time}
}

// DeploymentStatus is one status posted on a deployment.
type DeploymentStatus struct {
	State DeploymentState
	// Description is made one line and cut to GitHub's 140 characters.
	Description string
	// EnvironmentURL is the preview's URL ("View deployment").
	EnvironmentURL string
	// LogURL links the build log.
	LogURL string
}

// FindDeployment returns Slipway's newest deployment of sha to environment.
func (c *Client) FindDeployment(ctx context.Context, repo Repo, environment, sha string) (Deployment, bool, error) {
	ds, err := c.listDeployments(ctx, repo, &gh.DeploymentsListOptions{SHA: sha, Environment: environment, Task: DeploymentTask}, 1)
	if err != nil {
		return Deployment{}, false, fmt.Errorf("find deployment of %s to %s in %s: %w", contract.ShortSHA(sha), environment, repo, err)
	}
	for _, d := range ds { // newest first
		if d.SHA == sha && d.Environment == environment {
			return d, true, nil
		}
	}
	return Deployment{}, false, nil
}

// EnsureDeployment returns the deployment of sha to environment for pull
// request pr, creating it only when none exists, so repeated calls and
// controller restarts keep one deployment per (environment, SHA).
func (c *Client) EnsureDeployment(ctx context.Context, repo Repo, pr int, environment, sha string) (d Deployment, created bool, err error) {
	d, ok, err := c.FindDeployment(ctx, repo, environment, sha)
	if err != nil || ok {
		return d, false, err
	}
	g, err := c.rest(ctx, repo)
	if err != nil {
		return Deployment{}, false, err
	}
	payload := map[string]any{"pr": pr}
	if _, service, _ := ParseEnvironment(environment); service != "" {
		payload["service"] = service
	}
	req := &gh.DeploymentRequest{
		Ref:                   gh.String(sha),
		Task:                  gh.String(DeploymentTask),
		AutoMerge:             gh.Bool(false),
		RequiredContexts:      &[]string{},
		Payload:               payload,
		Environment:           gh.String(environment),
		Description:           gh.String(fmt.Sprintf("Slipway preview of #%d", pr)),
		TransientEnvironment:  gh.Bool(true),
		ProductionEnvironment: gh.Bool(false),
	}
	got, _, err := g.Repositories.CreateDeployment(ctx, repo.Owner, repo.Name, req)
	if err != nil {
		return Deployment{}, false, fmt.Errorf("create deployment of %s to %s in %s: %w", contract.ShortSHA(sha), environment, repo, err)
	}
	return deploymentFrom(got), true, nil
}

// CreateDeploymentStatus posts a status on deployment id. An *ErrorResponse
// with status 404 (IsNotFound) means the deployment is gone.
func (c *Client) CreateDeploymentStatus(ctx context.Context, repo Repo, id int64, s DeploymentStatus) error {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return err
	}
	req := &gh.DeploymentStatusRequest{State: gh.String(string(s.State))}
	if d := oneLine(s.Description, maxDescription); d != "" {
		req.Description = gh.String(d)
	}
	if s.EnvironmentURL != "" {
		req.EnvironmentURL = gh.String(s.EnvironmentURL)
	}
	if s.LogURL != "" {
		req.LogURL = gh.String(s.LogURL)
	}
	if _, _, err := g.Repositories.CreateDeploymentStatus(ctx, repo.Owner, repo.Name, id, req); err != nil {
		return fmt.Errorf("set deployment %d of %s to %s: %w", id, repo, s.State, err)
	}
	if s.State == DeploymentInactive {
		c.noteInactive(id)
	}
	return nil
}

// LatestDeploymentState returns the state of the newest status of deployment
// id, "" when it has none.
func (c *Client) LatestDeploymentState(ctx context.Context, repo Repo, id int64) (DeploymentState, error) {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return "", err
	}
	sts, _, err := g.Repositories.ListDeploymentStatuses(ctx, repo.Owner, repo.Name, id, &gh.ListOptions{PerPage: 1})
	if err != nil {
		return "", fmt.Errorf("list statuses of deployment %d of %s: %w", id, repo, err)
	}
	if len(sts) == 0 {
		return "", nil
	}
	return DeploymentState(sts[0].GetState()), nil
}

// Deployments lists Slipway's deployments of repo to environment, newest
// first, all pages.
func (c *Client) Deployments(ctx context.Context, repo Repo, environment string) ([]Deployment, error) {
	ds, err := c.listDeployments(ctx, repo, &gh.DeploymentsListOptions{Environment: environment, Task: DeploymentTask}, 0)
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s to %s: %w", repo, environment, err)
	}
	return ds, nil
}

// listDeployments pages through a deployment listing; maxPages 0 means all.
func (c *Client) listDeployments(ctx context.Context, repo Repo, opts *gh.DeploymentsListOptions, maxPages int) ([]Deployment, error) {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return nil, err
	}
	opts.PerPage = 100
	var out []Deployment
	for pages := 1; ; pages++ {
		page, resp, err := g.Repositories.ListDeployments(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return nil, err
		}
		for _, d := range page {
			out = append(out, deploymentFrom(d))
		}
		if resp.NextPage == 0 || pages == maxPages {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// CleanupResult says what CleanupDeployments did.
type CleanupResult struct {
	// Inactivated are the deployments marked inactive.
	Inactivated []Deployment
	// Checked counts the stale deployments examined (including those
	// already inactive).
	Checked int
}

// CleanupDeployments marks inactive every Slipway deployment of repo to a
// "pr-*" environment that belongs to a closed pull request, or to an open one
// at a SHA other than its head, and whose latest status is not inactive
// already. open maps each open pull request to its head SHA; a deployment of
// an open pull request's head SHA is never touched. Errors on single
// deployments do not stop the others; they are returned joined.
func (c *Client) CleanupDeployments(ctx context.Context, repo Repo, open map[int]string) (CleanupResult, error) {
	var res CleanupResult
	all, err := c.listDeployments(ctx, repo, &gh.DeploymentsListOptions{Task: DeploymentTask}, 0)
	if err != nil {
		return res, fmt.Errorf("cleanup deployments of %s: list: %w", repo, err)
	}
	var errs []error
	for _, d := range all {
		pr, _, ok := ParseEnvironment(d.Environment)
		if !ok {
			continue
		}
		head, isOpen := open[pr]
		if isOpen && head == d.SHA {
			continue
		}
		if c.knownInactive(d.ID) {
			continue
		}
		res.Checked++
		state, err := c.LatestDeploymentState(ctx, repo, d.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if state == DeploymentInactive {
			c.noteInactive(d.ID)
			continue
		}
		why := fmt.Sprintf("Pull request #%d is closed; preview removed", pr)
		if isOpen {
			why = fmt.Sprintf("Superseded by %s", contract.ShortSHA(head))
		}
		if err := c.CreateDeploymentStatus(ctx, repo, d.ID, DeploymentStatus{State: DeploymentInactive, Description: why}); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Inactivated = append(res.Inactivated, d)
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("cleanup deployments of %s: %w", repo, err)
	}
	return res, nil
}

func (c *Client) knownInactive(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.inactive[id]
	return ok
}

// noteInactive remembers that a deployment is inactive so later cleanups
// need not ask again. Inactive is final for Slipway, so the memory is only
// bounded, never invalidated.
func (c *Client) noteInactive(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inactive) >= 50_000 {
		clear(c.inactive)
	}
	c.inactive[id] = struct{}{}
}

// oneLine joins s onto one line, collapses runs of white space and cuts it
// to at most n characters, ending in "…" when cut.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
