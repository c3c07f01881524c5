package github

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// PullRequest is what Slipway needs to know about a pull request.
type PullRequest struct {
	Number int
	// State is "open" or "closed".
	State  string
	Merged bool
	Draft  bool
	Title  string
	// Author is the login of the user who opened it.
	Author  string
	HeadSHA string
	HeadRef string
	// HeadRepo is the full name of the head repository, "" when GitHub
	// reports it as null (the fork was deleted).
	HeadRepo string
	// BaseRepo is the full name of the repository the PR targets.
	BaseRepo  string
	BaseRef   string
	Labels    []string
	UpdatedAt time.Time
}

// Open reports whether the pull request is open.
func (p PullRequest) Open() bool { return p.State == "open" }

// FromFork reports whether the head lives outside the base repository,
// including when the head repository was deleted.
func (p PullRequest) FromFork() bool {
	return p.HeadRepo == "" || !strings.EqualFold(p.HeadRepo, p.BaseRepo)
}

// HasLabel reports whether the pull request carries the label (GitHub label
// names are case-insensitive).
func (p PullRequest) HasLabel(name string) bool {
	for _, l := range p.Labels {
		if strings.EqualFold(l, name) {
			return true
		}
	}
	return false
}

func pullRequestFrom(p *gh.PullRequest) PullRequest {
	pr := PullRequest{
		Number:    p.GetNumber(),
		State:     p.GetState(),
		Merged:    p.GetMerged() || p.MergedAt != nil,
		Draft:     p.GetDraft(),
		Title:     p.GetTitle(),
		Author:    p.GetUser().GetLogin(),
		HeadSHA:   p.GetHead().GetSHA(),
		HeadRef:   p.GetHead().GetRef(),
		HeadRepo:  p.GetHead().GetRepo().GetFullName(),
		BaseRepo:  p.GetBase().GetRepo().GetFullName(),
		BaseRef:   p.GetBase().GetRef(),
		UpdatedAt: p.GetUpdatedAt().Time,
	}
	for _, l := range p.Labels {
		pr.Labels = append(pr.Labels, l.GetName())
	}
	return pr
}

// PullRequest reads one pull request.
func (c *Client) PullRequest(ctx context.Context, repo Repo, number int) (PullRequest, error) {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return PullRequest{}, err
	}
	p, _, err := g.PullRequests.Get(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return PullRequest{}, fmt.Errorf("get pull request %s#%d: %w", repo, number, err)
	}
	return pullRequestFrom(p), nil
}

// OpenPullRequests lists every open pull request of repo, all pages.
func (c *Client) OpenPullRequests(ctx context.Context, repo Repo) ([]PullRequest, error) {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return nil, err
	}
	opts := &gh.PullRequestListOptions{State: "open", ListOptions: gh.ListOptions{PerPage: 100}}
	var out []PullRequest
	for {
		page, resp, err := g.PullRequests.List(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return nil, fmt.Errorf("list open pull requests of %s: %w", repo, err)
		}
		for _, p := range page {
			out = append(out, pullRequestFrom(p))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Permission is a user's role on a repository.
type Permission string

// The repository roles, strongest first.
const (
	PermissionAdmin    Permission = "admin"
	PermissionMaintain Permission = "maintain"
	PermissionWrite    Permission = "write"
	PermissionTriage   Permission = "triage"
	PermissionRead     Permission = "read"
	PermissionNone     Permission = "none"
)

// CanWrite reports whether the role may push to the repository: admin,
// maintain or write.
func (p Permission) CanWrite() bool {
	return p == PermissionAdmin || p == PermissionMaintain || p == PermissionWrite
}

type permKey struct{ repo, user string }

type permEntry struct {
	perm    Permission
	expires time.Time
}

// permissionAnswer is GET /repos/{owner}/{repo}/collaborators/{user}/permission.
// go-github v60 lacks role_name, which tells maintain from write and triage
// from read.
type permissionAnswer struct {
	Permission string `json:"permission"`
	RoleName   string `json:"role_name"`
}

// Permission returns user's role on repo from the collaborator-permission
// API (never from author_association), cached for Options.PermissionTTL.
// A user GitHub does not know has PermissionNone.
func (c *Client) Permission(ctx context.Context, repo Repo, user string) (Permission, error) {
	key := permKey{repo.key(), strings.ToLower(user)}
	now := c.now()
	c.mu.Lock()
	e, ok := c.perms[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.perm, nil
	}
	g, err := c.rest(ctx, repo)
	if err != nil {
		return "", err
	}
	req, err := g.NewRequest("GET", fmt.Sprintf("repos/%s/%s/collaborators/%s/permission",
		repo.Owner, repo.Name, url.PathEscape(user)), nil)
	if err != nil {
		return "", err
	}
	var ans permissionAnswer
	perm := PermissionNone
	if _, err := g.Do(ctx, req, &ans); err != nil {
		if !IsNotFound(err) {
			return "", fmt.Errorf("get permission of %s on %s: %w", user, repo, err)
		}
	} else {
		perm = permissionFrom(ans)
	}
	c.mu.Lock()
	if len(c.perms) > 1000 {
		for k, v := range c.perms {
			if !now.Before(v.expires) {
				delete(c.perms, k)
			}
		}
	}
	c.perms[key] = permEntry{perm: perm, expires: now.Add(c.permTTL)}
	c.mu.Unlock()
	return perm, nil
}

// CanWrite reports whether user has write access (admin, maintain or write) to repo.
func (c *Client) CanWrite(ctx context.Context, repo Repo, user string) (bool, error) {
	p, err := c.Permission(ctx, repo, user)
	return p.CanWrite(), err
}

// permissionFrom prefers role_name; a custom role (GitHub Enterprise) falls
// back to the legacy permission field, which maps it onto admin/write/read/none.
func permissionFrom(a permissionAnswer) Permission {
	switch p := Permission(a.RoleName); p {
	case PermissionAdmin, PermissionMaintain, PermissionWrite, PermissionTriage, PermissionRead:
		return p
	}
	switch p := Permission(a.Permission); p {
	case PermissionAdmin, PermissionWrite, PermissionRead:
		return p
	}
	return PermissionNone
}
