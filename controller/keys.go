package controller

import (
	"fmt"
	"strings"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/internal/contract"
)

// canonicalRepo returns the configured spelling of a repository name.
func canonicalRepo(cfg *config.Controller, name string) string {
	if r, ok := cfg.Repo(name); ok {
		return r.Name
	}
	return name
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
	r.InstallationID = c.intake.installation(key.Repo)
	return r, nil
}
