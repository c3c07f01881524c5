package controller

import (
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

// defaultHosts is the primary host a PR gets under the default expose,
// used for status pages before the compose project is loaded.
func (c *Controller) defaultHosts(repo gh.Repo, pr int) []string {
	tmpl := c.hosts.PrimaryTemplate
	if tmpl == "" {
		tmpl = contract.PrimaryHostTemplate
	}
	d := contract.HostData{Number: pr, Owner: repo.Owner, Repo: repo.Name, Domain: c.cfg.Domain}
	if len(c.hosts.Key) > 0 {
		d.Random = contract.RandomLabel(c.hosts.Key, repo.String(), pr)
	}
	h, err := contract.Host(tmpl, d)
	if err != nil {
		return nil
	}
	return []string{h}
}

// routeHosts lists the hosts a plan routes.
func routeHosts(p *stack.Plan) []string {
	var out []string
	for _, r := range p.Routes {
		out = append(out, r.Host)
	}
	return out
}

// logURL links a build log on the dashboard, or "" without one.
func (c *Controller) logURL(project, sha string) string {
	if c.dashURL == "" {
		return ""
	}
	return c.dashURL + "/environments/" + project + "?sha=" + sha + "#build-log"
}
